//! The recall eval: how much of what a function uses from other files `strata context` puts in
//! front of a model, on real codebases at fixed versions (crates from the cargo registry, packages
//! from npm), at the default budgets. For each codebase it samples functions deterministically,
//! takes the ground truth from code that is not Strata's resolver (the TypeScript compiler's
//! checker for TypeScript, `recall/rust_oracle.rs` for Rust), runs the built `strata context
//! FILE:LINE:COL --json` at each (twice, for determinism) and prints recall per tier, strict recall,
//! precision of the "used at the cursor" items, tokens per tier and budget overruns.
//!
//! `cargo bench --bench recall [-- NAME…]`; downloads once into `target/recall/` (needs the
//! registries, `cargo`, `npm`, `node` and `tar`). Not part of `cargo test`.

#[path = "recall/rust_oracle.rs"]
mod rust_oracle;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Functions sampled per codebase.
const SAMPLES: usize = 50;

struct Corpus {
    name: &'static str,
    /// `crate@version` or `npm-package@version`.
    package: &'static str,
    rust: bool,
    /// Not looked at while the resolver was written.
    held_out: bool,
}

const CORPORA: &[Corpus] = &[
    Corpus {
        name: "tokio",
        package: "tokio@1.54.1",
        rust: true,
        held_out: false,
    },
    Corpus {
        name: "regex-syntax",
        package: "regex-syntax@0.8.12",
        rust: true,
        held_out: false,
    },
    Corpus {
        name: "serde_json",
        package: "serde_json@1.0.154",
        rust: true,
        held_out: false,
    },
    Corpus {
        name: "clap_builder",
        package: "clap_builder@4.6.7",
        rust: true,
        held_out: true,
    },
    Corpus {
        name: "rxjs",
        package: "rxjs@7.8.1",
        rust: false,
        held_out: false,
    },
    Corpus {
        name: "redux-toolkit",
        package: "@reduxjs/toolkit@2.3.0",
        rust: false,
        held_out: false,
    },
    Corpus {
        name: "query-core",
        package: "@tanstack/query-core@5.59.0",
        rust: false,
        held_out: false,
    },
    Corpus {
        name: "mobx",
        package: "mobx@6.13.5",
        rust: false,
        held_out: true,
    },
];

/// A definition the ground truth says a function uses.
#[derive(Clone, Debug)]
struct Truth {
    file: String,
    line: usize,
    name: String,
}

struct Sample {
    file: String,
    line: usize,
    col: usize,
    name: String,
    /// Every definition it uses (this file's too, for precision).
    uses: Vec<Truth>,
    /// What the ground truth could not tell (an ambiguous name; a member on a value whose type
    /// only a checker knows): offering one counts neither way.
    maybe: Vec<Truth>,
}

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/recall");
    std::fs::create_dir_all(&base).unwrap();
    let strata = PathBuf::from(env!("CARGO_BIN_EXE_strata"));
    println!(
        "| codebase | samples | uses | recall | working | background | strict | precision | working tokens (median/max) | background tokens (median/max) | over budget | deterministic |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for corpus in CORPORA {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == corpus.name) {
            continue;
        }
        let root = match fetch(corpus, &base) {
            Ok(root) => root,
            Err(e) => {
                println!("| {} | could not fetch: {e} |", corpus.name);
                continue;
            }
        };
        let samples = match if corpus.rust {
            rust_truth(&root)
        } else {
            ts_truth(&root, &base)
        } {
            Ok(s) => s,
            Err(e) => {
                println!("| {} | no ground truth: {e} |", corpus.name);
                continue;
            }
        };
        measure(corpus, &root, &base, &strata, samples);
    }
}

/// Downloads and unpacks a codebase once: `target/recall/<name>/` with its `src/` and manifest.
fn fetch(corpus: &Corpus, base: &Path) -> Result<PathBuf, String> {
    let root = base.join(corpus.name);
    if root.join("src").is_dir() {
        return Ok(root);
    }
    let (name, version) = corpus.package.rsplit_once('@').ok_or("bad package")?;
    let work = base.join(format!("{}-download", corpus.name));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let tarball = if corpus.rust {
        // A manifest that depends on the crate: `cargo fetch` downloads it into the registry cache.
        std::fs::create_dir_all(work.join("src")).map_err(|e| e.to_string())?;
        std::fs::write(work.join("src/lib.rs"), "").map_err(|e| e.to_string())?;
        std::fs::write(
            work.join("Cargo.toml"),
            format!(
                "[package]\nname = \"recall-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[dependencies]\n{name} = \"={version}\"\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        run(Command::new("cargo").arg("fetch").current_dir(&work))?;
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
            });
        let cache = home.join("registry/cache");
        let mut found = None;
        for index in std::fs::read_dir(&cache)
            .map_err(|e| e.to_string())?
            .flatten()
        {
            let p = index.path().join(format!("{name}-{version}.crate"));
            if p.is_file() {
                found = Some(p);
            }
        }
        found.ok_or("the crate is not in the registry cache")?
    } else {
        let out = run(Command::new("npm")
            .args(["pack", corpus.package, "--silent"])
            .current_dir(&work))?;
        work.join(out.lines().last().unwrap_or("").trim())
    };
    let unpacked = work.join("unpacked");
    std::fs::create_dir_all(&unpacked).map_err(|e| e.to_string())?;
    run(Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&unpacked))?;
    let top = std::fs::read_dir(&unpacked)
        .map_err(|e| e.to_string())?
        .flatten()
        .next()
        .ok_or("empty package")?
        .path();
    // The workspace: sources and manifests only (no compiled copies beside them).
    std::fs::create_dir_all(root.join(".git")).map_err(|e| e.to_string())?;
    for keep in [
        "src",
        "Cargo.toml",
        "package.json",
        "tsconfig.json",
        "build.rs",
    ] {
        if top.join(keep).exists() {
            std::fs::rename(top.join(keep), root.join(keep)).map_err(|e| e.to_string())?;
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(root)
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn rust_truth(root: &Path) -> Result<Vec<Sample>, String> {
    let t = |d: &rust_oracle::Definition| Truth {
        file: d.file.clone(),
        line: d.line,
        name: d.name.clone(),
    };
    Ok(rust_oracle::analyse(root)
        .into_iter()
        .map(|f| Sample {
            file: f.file,
            line: f.line,
            col: f.col,
            name: f.name,
            uses: f.uses.iter().map(t).collect(),
            maybe: f.maybe.iter().map(t).collect(),
        })
        .collect())
}

fn ts_truth(root: &Path, base: &Path) -> Result<Vec<Sample>, String> {
    let node = base.join("node");
    let typescript = node.join("node_modules/typescript");
    if !typescript.is_dir() {
        run(Command::new("npm")
            .args(["install", "--silent", "--prefix"])
            .arg(&node)
            .arg("typescript@5.6.3"))?;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/recall/ts_oracle.js");
    let out = run(Command::new("node").arg(script).arg(&typescript).arg(root))?;
    let mut samples = Vec::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let uses = v["uses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| Truth {
                file: u["file"].as_str().unwrap_or("").to_string(),
                line: u["line"].as_u64().unwrap_or(0) as usize,
                name: u["name"].as_str().unwrap_or("").to_string(),
            })
            .collect();
        let members = v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| Truth {
                file: u["file"].as_str().unwrap_or("").to_string(),
                line: u["line"].as_u64().unwrap_or(0) as usize,
                name: u["name"].as_str().unwrap_or("").to_string(),
            })
            .collect();
        samples.push(Sample {
            file: v["file"].as_str().unwrap_or("").to_string(),
            line: v["line"].as_u64().unwrap_or(0) as usize,
            col: v["col"].as_u64().unwrap_or(0) as usize,
            name: v["name"].as_str().unwrap_or("").to_string(),
            uses,
            maybe: members,
        });
    }
    Ok(samples)
}

/// FNV-1a: a fixed order of samples that no code change moves.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn measure(corpus: &Corpus, root: &Path, base: &Path, strata: &Path, samples: Vec<Sample>) {
    // Functions that use at least one definition of another file, in a fixed pseudo-random order.
    let mut pool: Vec<Sample> = samples
        .into_iter()
        .filter(|s| s.uses.iter().any(|u| u.file != s.file))
        .collect();
    pool.sort_by_key(|s| {
        (
            fnv(&format!("{}:{}", s.file, s.line)),
            s.file.clone(),
            s.line,
        )
    });
    pool.truncate(SAMPLES);
    let cache = base.join("cache");
    let config = base.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let (mut uses, mut found, mut in_working, mut in_background, mut strict) = (0, 0, 0, 0, 0);
    let (mut offered, mut right) = (0, 0);
    let (mut working_tokens, mut background_tokens) = (Vec::new(), Vec::new());
    let (mut over, mut deterministic) = (0, 0);
    let mut misses: BTreeMap<String, usize> = BTreeMap::new();
    let mut wrong: BTreeMap<String, usize> = BTreeMap::new();
    let mut unstrict: BTreeMap<String, usize> = BTreeMap::new();
    let lines_of: std::cell::RefCell<BTreeMap<String, Vec<String>>> = Default::default();
    let line_text = |file: &str, line: usize| -> String {
        lines_of
            .borrow_mut()
            .entry(file.to_string())
            .or_insert_with(|| {
                std::fs::read_to_string(root.join(file))
                    .unwrap_or_default()
                    .lines()
                    .map(|l| l.trim().to_string())
                    .collect()
            })
            .get(line)
            .cloned()
            .unwrap_or_default()
    };
    for s in &pool {
        let position = format!("{}:{}:{}", s.file, s.line + 1, s.col + 1);
        let call = || {
            Command::new(strata)
                .args(["context", &position, "--json"])
                .current_dir(root)
                .env("STRATA_CACHE_DIR", &cache)
                .env("XDG_CONFIG_HOME", &config)
                .env_remove("STRATA_CONFIG")
                .output()
        };
        let (Ok(first), Ok(second)) = (call(), call()) else {
            continue;
        };
        if first.stdout == second.stdout {
            deterministic += 1;
        }
        let Ok(pack) = serde_json::from_slice::<serde_json::Value>(&first.stdout) else {
            eprintln!(
                "{}: {position} ({}): {}",
                corpus.name,
                s.name,
                String::from_utf8_lossy(&first.stderr)
            );
            continue;
        };
        let tiers = pack["tiers"].as_array().cloned().unwrap_or_default();
        let tier = |name: &str| {
            tiers
                .iter()
                .find(|t| t["tier"] == name)
                .cloned()
                .unwrap_or_default()
        };
        for t in &tiers {
            let budget = t["budget"].as_u64().unwrap_or(0);
            if budget > 0 && t["tokens"].as_u64().unwrap_or(0) > budget {
                over += 1;
            }
        }
        working_tokens.push(tier("working")["tokens"].as_u64().unwrap_or(0));
        background_tokens.push(tier("background")["tokens"].as_u64().unwrap_or(0));
        let covers = |item: &serde_json::Value, u: &Truth| {
            if item["source"] != u.file.as_str() {
                return false;
            }
            match item["lines"].as_array() {
                Some(l) => {
                    let (a, b) = (
                        l[0].as_u64().unwrap_or(0) as usize,
                        l[1].as_u64().unwrap_or(0) as usize,
                    );
                    a <= u.line && u.line <= b
                }
                // An outline of the file that lists the name.
                None => item["text"].as_str().is_some_and(|t| t.contains(&u.name)),
            }
        };
        let items = |name: &str| tier(name)["items"].as_array().cloned().unwrap_or_default();
        let (working, background) = (items("working"), items("background"));
        for u in s.uses.iter().filter(|u| u.file != s.file) {
            uses += 1;
            let w = working.iter().any(|i| covers(i, u));
            let b = background.iter().any(|i| covers(i, u));
            in_working += usize::from(w);
            in_background += usize::from(b);
            if w || b {
                found += 1;
            } else {
                *misses
                    .entry(format!(
                        "{} ({}) for {}:{}",
                        u.name,
                        u.file,
                        s.file,
                        s.line + 1
                    ))
                    .or_default() += 1;
            }
            let declaration = line_text(&u.file, u.line);
            if !declaration.is_empty()
                && working
                    .iter()
                    .chain(background.iter())
                    .any(|i| i["text"].as_str().is_some_and(|t| t.contains(&declaration)))
            {
                strict += 1;
            } else if w || b {
                let fidelity = working
                    .iter()
                    .chain(background.iter())
                    .find(|i| covers(i, u))
                    .and_then(|i| i["fidelity"].as_str())
                    .unwrap_or("")
                    .to_string();
                *unstrict
                    .entry(format!(
                        "{} ({}, {fidelity}) for {}:{}",
                        u.name,
                        u.file,
                        s.file,
                        s.line + 1
                    ))
                    .or_default() += 1;
            }
        }
        for item in working.iter().filter(|i| {
            i["reason"]
                .as_str()
                .is_some_and(|r| r.ends_with("used at the cursor"))
        }) {
            if s.maybe.iter().any(|u| covers(item, u)) && !s.uses.iter().any(|u| covers(item, u)) {
                continue; // the ground truth could not tell
            }
            offered += 1;
            if s.uses.iter().any(|u| covers(item, u)) {
                right += 1;
            } else {
                let what = format!(
                    "{} {} ({}) for {}:{}",
                    item["kind"].as_str().unwrap_or(""),
                    item["name"].as_str().unwrap_or(""),
                    item["source"].as_str().unwrap_or(""),
                    s.file,
                    s.line + 1
                );
                *wrong.entry(what).or_default() += 1;
            }
        }
    }
    let pct = |a: usize, b: usize| {
        if b == 0 {
            "–".to_string()
        } else {
            format!("{:.1} %", 100.0 * a as f64 / b as f64)
        }
    };
    println!(
        "| {}{} | {} | {} | {} | {} | {} | {} | {} | {}/{} | {}/{} | {} | {}/{} |",
        corpus.name,
        if corpus.held_out { " (held out)" } else { "" },
        pool.len(),
        uses,
        pct(found, uses),
        pct(in_working, uses),
        pct(in_background, uses),
        pct(strict, uses),
        pct(right, offered),
        median(working_tokens.clone()),
        working_tokens.iter().max().unwrap_or(&0),
        median(background_tokens.clone()),
        background_tokens.iter().max().unwrap_or(&0),
        over,
        deterministic,
        pool.len()
    );
    if std::env::var_os("RECALL_MISSES").is_some() {
        let mut misses: Vec<(String, usize)> = misses.into_iter().collect();
        misses.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (m, n) in misses.iter().take(25) {
            eprintln!("  {}: missed {n}× {m}", corpus.name);
        }
        for (m, n) in wrong.iter().take(25) {
            eprintln!("  {}: offered {n}× {m}", corpus.name);
        }
        for (m, n) in unstrict.iter().take(25) {
            eprintln!("  {}: not declared {n}× {m}", corpus.name);
        }
    }
}
