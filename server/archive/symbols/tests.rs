//! Snapshots of the symbol tables extracted from small Rust and TypeScript files.

use expect_test::{Expect, expect};

use super::{FileFacts, facts};
use crate::syntax::Language;

fn render(text: &str, facts: &FileFacts) -> String {
    let mut out = String::new();
    for s in &facts.symbols {
        let head = text[s.range.start..s.signature_end.max(s.range.start)]
            .lines()
            .last()
            .unwrap_or("")
            .trim();
        out.push_str(&format!(
            "{} {}{}{} scope={:?} of_trait={:?} pub={} detail={:?} lines={:?} | {head}\n",
            s.kind.as_str(),
            s.container,
            if s.container.is_empty() { "" } else { "::" },
            s.name,
            s.scope,
            s.of_trait,
            s.public,
            s.detail,
            s.lines,
        ));
        if !s.name.starts_with(|c: char| c.is_ascii_digit()) {
            assert_eq!(&text[s.name_start..s.name_start + s.name.len()], s.name);
        }
    }
    for i in &facts.imports {
        out.push_str(&format!(
            "import scope={:?} {} <- {:?} name={:?}{}{}\n",
            i.scope,
            i.local,
            i.path,
            i.name,
            if i.export { " export" } else { "" },
            if i.type_only { " type" } else { "" },
        ));
    }
    out
}

fn check(language: Language, text: &str, expected: Expect) {
    expected.assert_eq(&render(text, &facts(text, Some(language))));
}

#[test]
fn rust_items_uses_mods_and_macro_bodies() {
    check(
        Language::Rust,
        r#"use crate::a::b::{self, C as D, e::*};
pub use super::x::Y;
use std::sync::Arc;

#[path = "other/place.rs"]
mod placed;
pub mod inline {
    pub fn inner() -> Result<Self, ()> { todo!() }
}

/// A remapper.
pub struct Remapper {
    pub map: Arc<Vec<u32>>,
    inner: &'static Inner,
}
struct Pair(u32, Box<Inner>);

impl Remapper {
    pub fn new() -> Self { Remapper { map: Arc::new(vec![]), inner: todo!() } }
    fn go(&self) {}
}
impl Display for Remapper {
    fn fmt(&self) {}
}
pub trait Run { fn run(&self); }
const LIMIT: usize = 8;
cfg_rt! {
    pub fn spawn_blocking() -> JoinHandle<R> { todo!() }
    mod blocking;
    pub use blocking::spawn;
}
#[macro_export]
macro_rules! ready { () => {} }
"#,
        expect![[r#"
            modfile placed scope="" of_trait="" pub=false detail="other/place.rs" lines=(4, 5) | mod placed;
            module inline scope="" of_trait="" pub=true detail="" lines=(6, 8) | pub mod inline
            function inner scope="inline" of_trait="" pub=true detail="Self" lines=(7, 7) | pub fn inner() -> Result<Self, ()>
            struct Remapper scope="" of_trait="" pub=true detail="" lines=(10, 14) | pub struct Remapper
            field Remapper::map scope="" of_trait="" pub=true detail="Vec" lines=(12, 12) | pub map: Arc<Vec<u32>>
            field Remapper::inner scope="" of_trait="" pub=false detail="Inner" lines=(13, 13) | inner: &'static Inner
            struct Pair scope="" of_trait="" pub=false detail="" lines=(15, 15) | struct Pair
            field Pair::0 scope="" of_trait="" pub=false detail="u32" lines=(15, 15) | u32
            field Pair::1 scope="" of_trait="" pub=false detail="Inner" lines=(15, 15) | Box<Inner>
            method Remapper::new scope="" of_trait="" pub=true detail="Remapper" lines=(18, 18) | pub fn new() -> Self
            method Remapper::go scope="" of_trait="" pub=false detail="" lines=(19, 19) | fn go(&self)
            method Remapper::fmt scope="" of_trait="Display" pub=false detail="" lines=(22, 22) | fn fmt(&self)
            trait Run scope="" of_trait="" pub=true detail="" lines=(24, 24) | pub trait Run
            method Run::run scope="" of_trait="" pub=true detail="" lines=(24, 24) | fn run(&self);
            const LIMIT scope="" of_trait="" pub=false detail="usize" lines=(25, 25) | const LIMIT: usize =
            function spawn_blocking scope="" of_trait="" pub=true detail="JoinHandle" lines=(27, 27) | pub fn spawn_blocking() -> JoinHandle<R>
            modfile blocking scope="" of_trait="" pub=false detail="" lines=(28, 28) | mod blocking;
            macro ready scope="" of_trait="" pub=true detail="" lines=(31, 32) | macro_rules! ready { () => {} }
            import scope="" b <- "crate::a::b" name="b"
            import scope="" D <- "crate::a::b::C" name="C"
            import scope="" * <- "crate::a::b::e" name="e"
            import scope="" Y <- "super::x::Y" name="Y" export
            import scope="" Arc <- "std::sync::Arc" name="Arc"
            import scope="" spawn <- "blocking::spawn" name="spawn" export
        "#]],
    );
}

#[test]
fn typescript_imports_exports_and_members() {
    check(
        Language::TypeScript,
        r#"import { innerFrom, other as renamed } from './innerFrom';
import type { ObservableInput } from '../types';
import Default, * as ns from "lib";
import { type Only } from './only';
export * from './operators/map';
export * as ops from './ops';
export { a as b, c } from './abc';
export type { T } from './t';
const local = 1;
export { local as exported };
export default function main(): Subscriber<number> { return renamed(); }

/** A class. */
export class Subscriber<T> extends Base {
  protected destination: Observer<T> | null;
  next(value: T): void {}
}
export interface Observer<T> { next: (value: T) => void; closed?: boolean; }
export const from = (x: number) => x;
export type Maybe<T> = T | undefined;
"#,
        expect![[r#"
            variable local scope="" of_trait="" pub=false detail="" lines=(8, 8) | const local =
            function main scope="" of_trait="" pub=true detail="Subscriber" lines=(10, 10) | export default function main(): Subscriber<number>
            class Subscriber scope="" of_trait="" pub=true detail="Base" lines=(12, 16) | export class Subscriber<T> extends Base
            field Subscriber::destination scope="" of_trait="" pub=true detail="Observer" lines=(14, 14) | protected destination: Observer<T> | null
            method Subscriber::next scope="" of_trait="" pub=true detail="void" lines=(15, 15) | next(value: T): void
            interface Observer scope="" of_trait="" pub=true detail="" lines=(17, 17) | export interface Observer<T>
            field Observer::next scope="" of_trait="" pub=true detail="" lines=(17, 17) | next: (value: T) => void
            field Observer::closed scope="" of_trait="" pub=true detail="boolean" lines=(17, 17) | closed?: boolean
            function from scope="" of_trait="" pub=true detail="" lines=(18, 18) | export const from = (x: number) =>
            type Maybe scope="" of_trait="" pub=true detail="T" lines=(19, 19) | export type Maybe<T> = T | undefined;
            import scope="" innerFrom <- "./innerFrom" name="innerFrom"
            import scope="" renamed <- "./innerFrom" name="other"
            import scope="" ObservableInput <- "../types" name="ObservableInput" type
            import scope="" Default <- "lib" name="default"
            import scope="" ns <- "lib" name="*"
            import scope="" Only <- "./only" name="Only" type
            import scope="" * <- "./operators/map" name="*" export
            import scope="" ops <- "./ops" name="*" export
            import scope="" b <- "./abc" name="a" export
            import scope="" c <- "./abc" name="c" export
            import scope="" T <- "./t" name="T" export type
            import scope="" exported <- "" name="local" export
            import scope="" default <- "" name="main" export
        "#]],
    );
}
