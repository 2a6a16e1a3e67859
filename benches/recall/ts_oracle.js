// The TypeScript side of `cargo bench --bench recall`: the ground truth, from the TypeScript
// compiler's own checker (not from Strata). For every function, method and function-valued
// const of the files under ROOT/src, it lists the workspace declarations the function names:
// every identifier that is not a property name, `ns.name` of a namespace, and `this.name`,
// resolved by the checker through imports and re-exports to its declaration. Output: one JSON
// line per function: { file, line, col, name, uses: [{ file, line, name }], members: [...] }
// (0-based lines); `members` adds every property access the checker resolves, for precision.
// Usage: node ts_oracle.js TYPESCRIPT_DIR ROOT
'use strict';
const path = require('path');
const fs = require('fs');
const ts = require(process.argv[2]);
const root = path.resolve(process.argv[3]);

function walk(dir, out) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && !e.name.startsWith('.')) walk(p, out);
    } else if (/\.(ts|tsx)$/.test(e.name)) {
      out.push(p);
    }
  }
  return out;
}

const files = walk(path.join(root, 'src'), []).sort();
let options = { allowJs: false, noEmit: true, target: ts.ScriptTarget.ES2020, skipLibCheck: true, jsx: ts.JsxEmit.React };
for (const name of ['tsconfig.json', 'src/tsconfig.json']) {
  const p = path.join(root, name);
  if (fs.existsSync(p)) {
    const read = ts.readConfigFile(p, ts.sys.readFile);
    if (!read.error) {
      const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(p));
      options = Object.assign({}, parsed.options, { noEmit: true, skipLibCheck: true });
    }
    break;
  }
}
const program = ts.createProgram(files, options);
const checker = program.getTypeChecker();
const rel = (f) => path.relative(root, f).split(path.sep).join('/');
const inWorkspace = (f) => f.startsWith(path.join(root, 'src') + path.sep) && !f.includes('node_modules');

// The declaration a name stands for: aliases (imports, re-exports) followed to the end.
function declarationsOf(node) {
  let symbol = checker.getSymbolAtLocation(node);
  if (!symbol) return [];
  if (symbol.flags & ts.SymbolFlags.Alias) {
    try { symbol = checker.getAliasedSymbol(symbol); } catch (e) { return []; }
  }
  return (symbol.declarations || []).filter((d) => !ts.isSourceFile(d) && !ts.isModuleDeclaration(d) && !ts.isImportSpecifier(d) && !ts.isExportSpecifier(d) && !ts.isNamespaceImport(d) && !ts.isImportClause(d) && !ts.isParameter(d) && !ts.isTypeParameterDeclaration(d) && !ts.isBindingElement(d));
}

// Top-level declarations, class and interface members: what a definition is here.
function isDefinition(d) {
  const p = d.parent;
  if (ts.isVariableDeclaration(d)) return ts.isVariableDeclarationList(p) && ts.isVariableStatement(p.parent) && ts.isSourceFile(p.parent.parent);
  if (ts.isFunctionDeclaration(d) || ts.isClassDeclaration(d) || ts.isInterfaceDeclaration(d) || ts.isTypeAliasDeclaration(d) || ts.isEnumDeclaration(d)) return ts.isSourceFile(p);
  if (ts.isMethodDeclaration(d) || ts.isPropertyDeclaration(d) || ts.isMethodSignature(d) || ts.isPropertySignature(d) || ts.isGetAccessor(d) || ts.isSetAccessor(d)) return ts.isClassLike(p) || ts.isInterfaceDeclaration(p);
  return false;
}

function usesOf(fn, sf, all) {
  const found = new Map();
  const visit = (n) => {
    let target = null;
    // With `all`, every property access the checker resolves counts too (for precision only).
    if (all && ts.isIdentifier(n) && ts.isPropertyAccessExpression(n.parent) && n.parent.name === n) target = n;
    if (ts.isIdentifier(n)) {
      const parent = n.parent;
      const propertyName = (ts.isPropertyAccessExpression(parent) && parent.name === n) || (ts.isQualifiedName(parent) && parent.right === n) || ts.isPropertyAssignment(parent) && parent.name === n || (ts.isMethodDeclaration(parent) || ts.isPropertyDeclaration(parent)) && parent.name === n;
      if (!propertyName) target = n;
      // `ns.name`, `Ns.Type`, `this.name`: the member counts when its object is a namespace or `this`.
      if (ts.isPropertyAccessExpression(parent) && parent.name === n) {
        const obj = parent.expression;
        if (obj.kind === ts.SyntaxKind.ThisKeyword) target = n;
        else if (ts.isIdentifier(obj)) {
          const s = checker.getSymbolAtLocation(obj);
          const a = s && (s.flags & ts.SymbolFlags.Alias) ? checker.getAliasedSymbol(s) : s;
          if (a && (a.flags & ts.SymbolFlags.ValueModule || a.flags & ts.SymbolFlags.NamespaceModule)) target = n;
        }
      }
      if (ts.isQualifiedName(parent) && parent.right === n) target = n;
    }
    if (target) {
      for (const d of declarationsOf(target)) {
        const df = d.getSourceFile().fileName;
        if (!inWorkspace(df) || !isDefinition(d)) continue;
        if (df === sf.fileName && d.pos >= fn.pos && d.end <= fn.end) continue;
        const nameNode = d.name || d;
        const line = d.getSourceFile().getLineAndCharacterOfPosition(nameNode.getStart()).line;
        const key = rel(df) + ':' + line;
        if (!found.has(key)) found.set(key, { file: rel(df), line, name: nameNode.getText() });
      }
    }
    ts.forEachChild(n, visit);
  };
  ts.forEachChild(fn, visit);
  return [...found.values()];
}

for (const f of files) {
  const sf = program.getSourceFile(f);
  if (!sf || sf.isDeclarationFile) continue;
  const emit = (fn, nameNode) => {
    if (!fn.body) return;
    const pos = sf.getLineAndCharacterOfPosition(nameNode.getStart());
    process.stdout.write(JSON.stringify({ file: rel(f), line: pos.line, col: pos.character, name: nameNode.getText(), uses: usesOf(fn, sf, false), members: usesOf(fn, sf, true) }) + '\n');
  };
  const visit = (n) => {
    if ((ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n)) && n.name) emit(n, n.name);
    else if (ts.isVariableDeclaration(n) && n.initializer && (ts.isArrowFunction(n.initializer) || ts.isFunctionExpression(n.initializer)) && ts.isIdentifier(n.name) && ts.isSourceFile(n.parent.parent.parent)) emit(n.initializer, n.name);
    if (ts.isSourceFile(n) || ts.isClassDeclaration(n) || ts.isModuleDeclaration(n) || ts.isModuleBlock(n)) ts.forEachChild(n, visit);
  };
  visit(sf);
}
