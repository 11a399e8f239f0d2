// Validates custom resources against the schemas of the @kubernetes-models packages in package.json.
// stdin: a JSON array of {"id": "...", "object": {...}}; stdout: a JSON array of
// {"id": "...", "result": "valid" | "invalid" | "unknown", "errors": ["..."]}.
// "unknown" means no installed package models that apiVersion and kind: the caller reports it as not validated.
import { readFileSync } from "node:fs";

const PACKAGES = Object.keys(JSON.parse(readFileSync(new URL("./package.json", import.meta.url))).dependencies);

async function modelFor(apiVersion, kind) {
  if (!apiVersion.includes("/")) return null; // core kinds are kubernetes-validate's job
  for (const pkg of PACKAGES) {
    try {
      const module = await import(`${pkg}/${apiVersion}/${kind}`);
      if (module[kind]) return module[kind];
    } catch (error) {
      if (error.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED" && error.code !== "ERR_MODULE_NOT_FOUND") throw error;
    }
  }
  return null;
}

function describe(error) {
  if (Array.isArray(error.errors)) {
    return error.errors.map((e) => {
      const extra = e.params?.additionalProperty ?? e.params?.missingProperty ?? e.params?.allowedValues;
      return `${e.instancePath || "/"} ${e.message}${extra ? ` (${JSON.stringify(extra)})` : ""}`;
    });
  }
  return [String(error.message || error)];
}

const input = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const { id, object } of input) {
  const Model = await modelFor(object.apiVersion ?? "", object.kind ?? "");
  if (!Model) {
    results.push({ id, result: "unknown", errors: [] });
    continue;
  }
  try {
    new Model(object).validate();
    results.push({ id, result: "valid", errors: [] });
  } catch (error) {
    results.push({ id, result: "invalid", errors: describe(error) });
  }
}
process.stdout.write(JSON.stringify(results));
