#!/usr/bin/env node
// validate.cjs: offline schema validation of Kubernetes objects, for tests/integration/test_k8s.py.
//
// Reads JSON from stdin: [{"source": "k8s/base", "object": {...}}, ...] (objects rendered by
// `kubectl kustomize`), writes one JSON result per object to stdout:
//   {"source", "apiVersion", "kind", "name", "errors": [...], "unknown": [...]}
// and exits 0 when every object is valid, 1 when one is not, 2 when it could not run.
//
// Schemas: the npm packages kubernetes-models (Kubernetes 1.30 OpenAPI, so >= 1.29: native
// sidecars, AppArmor fields) and @kubernetes-models/cert-manager, pinned in package-lock.json.
// Their validators check types, required fields, enums and formats, but pass fields they do
// not know (the Kubernetes OpenAPI has no additionalProperties: false), while the API server
// rejects them (kubectl --validate=strict). So unknown fields are found here by watching the
// validator: every object handed to it is wrapped in a Proxy that records which properties
// the validator reads. A field the schema defines is read; a map (labels, matchLabels,
// resources.limits, ...) is enumerated as a whole. A field of an object that was neither read
// nor enumerated is unknown: `containerz`, `readinessProbee`. An object type the packages do
// not know (another apiVersion or kind) is an error too.
"use strict";

const GROUPS = {
  "": "kubernetes-models/v1",
  apps: "kubernetes-models/apps/v1",
  policy: "kubernetes-models/policy/v1",
  "networking.k8s.io": "kubernetes-models/networking.k8s.io/v1",
  batch: "kubernetes-models/batch/v1",
  "rbac.authorization.k8s.io": "kubernetes-models/rbac.authorization.k8s.io/v1",
  "cert-manager.io": "@kubernetes-models/cert-manager/cert-manager.io/v1",
};

function modelOf(apiVersion, kind) {
  const m = /^(?:([^/]+)\/)?v1$/.exec(apiVersion || "");
  const path = m ? GROUPS[m[1] || ""] : undefined;
  if (path === undefined) {
    return null;
  }
  const mod = require(path);
  const cls = mod[kind];
  return typeof cls === "function" && cls.apiVersion === apiVersion ? cls : null;
}

// Wraps value (and, lazily, everything reached through it) so reads are recorded in `seen`.
function watch(value, seen) {
  if (value === null || typeof value !== "object") {
    return value;
  }
  let rec = seen.get(value);
  if (rec !== undefined) {
    return rec.proxy;
  }
  rec = {read: new Set(), enumerated: false, proxy: null};
  rec.proxy = new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key === "string") {
        rec.read.add(key);
      }
      return watch(Reflect.get(target, key, receiver), seen);
    },
    has(target, key) {
      if (typeof key === "string") {
        rec.read.add(key);
      }
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      rec.enumerated = true;
      return Reflect.ownKeys(target);
    },
  });
  seen.set(value, rec);
  return rec.proxy;
}

// The JSON pointers of fields the validator never looked at.
function unknownFields(value, seen, path, out) {
  if (value === null || typeof value !== "object") {
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => unknownFields(v, seen, path + "/" + i, out));
    return;
  }
  const rec = seen.get(value);
  for (const key of Object.keys(value)) {
    if (rec === undefined || (!rec.enumerated && !rec.read.has(key))) {
      out.push(path + "/" + key);
    } else {
      unknownFields(value[key], seen, path + "/" + key, out);
    }
  }
}

function validateOne(entry) {
  const obj = entry.object || {};
  const meta = obj.metadata || {};
  const res = {
    source: entry.source,
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    name: meta.name,
    errors: [],
    unknown: [],
  };
  const cls = modelOf(obj.apiVersion, obj.kind);
  if (cls === null) {
    res.errors.push("no schema for apiVersion " + obj.apiVersion + " kind " + obj.kind);
    return res;
  }
  const seen = new Map();
  try {
    // the model's validate() with the plain object as `this`: no copy, so reads are seen
    cls.prototype.validate.call(watch(obj, seen));
  } catch (e) {
    const details = Array.isArray(e.errors) ?
      e.errors.map((x) => (x.instancePath || "/") + " " + x.message) :
      [String(e.message || e)];
    res.errors.push(...details);
  }
  unknownFields(obj, seen, "", res.unknown);
  return res;
}

function main() {
  let input = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (d) => {
    input += d;
  });
  process.stdin.on("end", () => {
    let entries;
    try {
      entries = JSON.parse(input);
    } catch (e) {
      process.stderr.write("validate.cjs: stdin is not JSON: " + e.message + "\n");
      process.exit(2);
    }
    const results = entries.map(validateOne);
    const bad = results.some((r) => r.errors.length > 0 || r.unknown.length > 0);
    // exitCode, not exit(): a pipe takes large output asynchronously, exit() would cut it
    process.exitCode = bad ? 1 : 0;
    process.stdout.write(JSON.stringify(results, null, 1) + "\n");
  });
}

main();
