// Validates Kubernetes manifests against the Kubernetes API's OpenAPI schema
// (npm kubernetes-models) and the Prometheus Operator's CRDs
// (@kubernetes-models/prometheus-operator): every field's type, enum and
// required-ness, as the models' validate() checks them, and, as an API server
// with strict field validation (kubectl's default since 1.27) does, no field
// the schema does not know: a misspelt field is an error, not a no-op.
//
// Usage: node validate_manifests.mjs FILE...   (YAML, one or more documents)
// Exit 0 when every object is valid; 1 with one line per problem otherwise.
// A kustomization.yaml is checked for the files it lists.
//
// The models' TypeScript declarations carry each object's fields; they are
// read here to find unknown fields, since the compiled validators accept
// any field they do not know.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const problems = [];

// apiVersion -> the package and folder holding its models.
function modelPath(apiVersion, kind) {
  if (apiVersion === "v1") return `kubernetes-models/v1/${kind}`;
  if (apiVersion.startsWith("monitoring.coreos.com/"))
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

// The .d.ts file behind a module specifier ("pkg/sub/path" or "./X.js" from `from`).
function declarationFile(spec, from) {
  if (spec.startsWith(".")) return path.resolve(path.dirname(from), spec.replace(/\.js$/, ".d.ts"));
  const parts = spec.split("/");
  const pkg = spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
  const rest = parts.slice(pkg.split("/").length).join("/");
  // As Node finds a package: node_modules/PKG in the folder or any above it.
  for (let dir = path.dirname(from); ; dir = path.dirname(dir)) {
    const root = path.join(dir, "node_modules", pkg);
    if (fs.existsSync(root)) return path.join(root, `${rest || "index"}.d.ts`);
    if (dir === path.dirname(dir)) return path.join(pkg, `${rest}.d.ts`);  // not installed: nothing to read
  }
}

// One declaration file: its imports (name -> file) and its interfaces
// (exported name or alias -> {field -> type text}).
const parsed = new Map();
function parse(file) {
  if (parsed.has(file)) return parsed.get(file);
  if (!fs.existsSync(file)) return { imports: new Map(), interfaces: new Map() };
  const text = fs.readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  const imports = new Map();
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g))
    for (const name of m[1].split(",").map((s) => s.trim()).filter(Boolean)) {
      const [orig, alias] = name.split(/\s+as\s+/);
      imports.set((alias || orig).trim(), { file: declarationFile(m[2], file), name: orig.trim() });
    }
  const interfaces = new Map();
  for (const m of text.matchAll(/export interface (\w+)[^{]*\{/g)) {
    let depth = 1;
    let i = m.index + m[0].length;
    const start = i;
    for (; depth > 0; ++i) depth += text[i] === "{" ? 1 : text[i] === "}" ? -1 : 0;
    interfaces.set(m[1], fields(text.slice(start, i - 1)));
  }
  for (const m of text.matchAll(/export type \{([^}]*)\}/g))
    for (const pair of m[1].split(",")) {
      const [orig, alias] = pair.trim().split(/\s+as\s+/);
      if (alias && interfaces.has(orig)) interfaces.set(alias, interfaces.get(orig));
    }
  const result = { imports, interfaces };
  parsed.set(file, result);
  return result;
}

// `"name"?: type;` at the body's top level -> {name -> type}.
function fields(body) {
  const out = {};
  let depth = 0;
  let piece = "";
  for (const ch of body) {
    if (ch === "{" || ch === "<" || ch === "(") ++depth;
    if (ch === "}" || ch === ">" || ch === ")") --depth;
    if (ch === ";" && depth === 0) {
      const m = piece.trim().match(/^"([^"]+)"\??:\s*([\s\S]*)$/);
      if (m) out[m[1]] = m[2].trim();
      piece = "";
    } else {
      piece += ch;
    }
  }
  return out;
}

// What a type text allows inside a value: {fields} of an interface, a map
// of them, or nothing to check (a primitive, a union, an alias).
function resolve(type, file) {
  const arr = type.match(/^Array<([\s\S]*)>$/);
  if (arr) return resolve(arr[1].trim(), file);
  const map = type.match(/^\{\s*\[key: string\]:\s*([\s\S]*?);?\s*\}$/);
  if (map) return { map: resolve(map[1].trim(), file) };
  if (!/^\w+$/.test(type)) return null;
  const here = parse(file);
  if (here.interfaces.has(type)) return { fields: here.interfaces.get(type), file };
  const imp = here.imports.get(type);
  if (!imp) return null;
  const there = parse(imp.file);
  const f = there.interfaces.get(imp.name) || there.interfaces.get(type);
  return f ? { fields: f, file: imp.file } : null;
}

function strict(value, shape, where) {
  if (!shape || value === null || typeof value !== "object") return;
  if (Array.isArray(value)) return value.forEach((v, i) => strict(v, shape, `${where}[${i}]`));
  if ("map" in shape) return Object.entries(value).forEach(([k, v]) => strict(v, shape.map, `${where}.${k}`));
  for (const [k, v] of Object.entries(value)) {
    if (!(k in shape.fields)) {
      problems.push(`${where}.${k}: unknown field`);
      continue;
    }
    strict(v, resolve(shape.fields[k], shape.file), `${where}.${k}`);
  }
}

async function check(doc, where) {
  if (doc.kind === "Kustomization") {
    for (const r of doc.resources || [])
      if (!fs.existsSync(path.join(path.dirname(where.split(":")[0]), r)))
        problems.push(`${where}: resource ${r} does not exist`);
    return;
  }
  if (!doc.apiVersion || !doc.kind) return problems.push(`${where}: no apiVersion or kind`);
  const spec = modelPath(doc.apiVersion, doc.kind);
  let Model;
  try {
    Model = (await import(spec))[doc.kind];
  } catch {
    return problems.push(`${where}: ${doc.apiVersion} ${doc.kind} is not a known kind`);
  }
  try {
    new Model(doc).validate();
  } catch (e) {
    problems.push(`${where} (${doc.kind} ${doc.metadata?.name}): ${e.message.split("\n")[0]}`);
  }
  const file = declarationFile(spec, fileURLToPath(import.meta.url));
  const top = parse(file).interfaces.get(`I${doc.kind}`);
  strict(doc, { fields: top, file }, `${where} ${doc.kind}`);
}

let objects = 0;
for (const file of process.argv.slice(2)) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  for (const [i, d] of docs.entries()) {
    if (d.errors.length) {
      problems.push(`${file}#${i}: ${d.errors[0].message}`);
      continue;
    }
    const doc = d.toJS();
    if (doc === null) continue;
    ++objects;
    await check(doc, `${file}:${i}`);
  }
}
for (const p of problems) console.log(p);
console.log(`${objects} objects, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
