// check_k8s.sh's step 3: KEDA's ScaledObject and TriggerAuthentication documents of the FILEs against
// KEDA's CRD schemas (@kubernetes-models/keda's .validate()), and every value of the generated
// manifests read back with a second YAML parser (js-yaml) equals its source file.
//
//   PIX_NODE_MODULES=.local/tools/node/node_modules node scripts/deploy/check_keda.mjs \
//       "$(python3 scripts/deploy/render_k8s.py --sources)" FILE...
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
const base = process.env.PIX_NODE_MODULES;
const load = (p) => import(pathToFileURL(path.join(base, p)).href);
const yaml = (await load("js-yaml/index.js")).default;
const { ScaledObject } = await load("@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject.js");
const { TriggerAuthentication } = await load("@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication.js");
const classes = { ScaledObject, TriggerAuthentication };
const [sourcesJson, ...files] = process.argv.slice(2);
let failures = 0, validated = 0, compared = 0;
for (const file of files) {
  let docs;
  try { docs = yaml.loadAll(fs.readFileSync(file, "utf8")); }
  catch (e) { console.error(`${file}: js-yaml cannot parse it: ${e.message}`); failures++; continue; }
  for (const doc of docs) {
    if (!doc || !String(doc.apiVersion || "").includes("keda.sh")) continue;
    const id = `${file} ${doc.kind}/${(doc.metadata || {}).name}`;
    const cls = classes[doc.kind];
    if (!cls || doc.apiVersion !== "keda.sh/v1alpha1") {
      console.error(`${id}: unknown KEDA kind or apiVersion ${doc.apiVersion}`); failures++; continue;
    }
    try { new cls(doc).validate(); validated++; }
    catch (e) { console.error(`${id}: ${e.message}`); failures++; }
  }
}
for (const [target, objs] of Object.entries(JSON.parse(sourcesJson))) {
  if (!fs.existsSync(target)) continue;
  const docs = yaml.loadAll(fs.readFileSync(target, "utf8")).filter(Boolean);
  for (const [kind, name, field, sources] of objs) {
    const doc = docs.find((d) => d.kind === kind && d.metadata && d.metadata.name === name);
    for (const [key, src] of sources) {
      if (!fs.existsSync(src)) continue;
      compared++;
      if (!doc || !doc[field] || doc[field][key] !== fs.readFileSync(src, "utf8")) {
        console.error(`${target}: ${name}/${key} does not read back (js-yaml) as ${src}`); failures++;
      }
    }
  }
}
console.log(`${validated} KEDA object(s) valid; ${compared} generated value(s) read back equal to their sources`);
process.exit(failures ? 1 : 0);
