#!/usr/bin/env python3
# Writes docs/schemas/*.schema.json, the --json contract of every command (docs/json-output.md). Edit the shapes
# here when a command's --json fields change, run `python3 scripts/gen-json-schemas.py`, and commit both: the tests
# (JsonOutputTests, JsonContractTests) validate the real output against the files.
import json, os
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BASE = "https://schemas.openlm.io/mirror/v1/"
out = "docs/schemas"
S = lambda: {"type": "string"}
I = lambda: {"type": "integer", "minimum": 0}
N = lambda: {"type": "number", "minimum": 0}
B = lambda: {"type": "boolean"}
R = lambda name: {"$ref": f"common.schema.json#/$defs/{name}"}
def arr(items): return {"type": "array", "items": items}
def obj(props, required=None, strict=True):
    o = {"type": "object", "properties": props}
    if required: o["required"] = required
    if strict: o["additionalProperties"] = False
    return o

common = {
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": BASE + "common.schema.json",
  "title": "openlm-mirror --json: the envelope and the shared vocabulary",
  "$defs": {
    "envelope": {
      "type": "object",
      "properties": {
        "schemaVersion": {"const": 1},
        "command": S(),
        "ok": B(),
        "exitCode": {"enum": [0, 1, 2, 3, 4, 130, 143]},
        "error": R("error"),
      },
      "required": ["schemaVersion", "command", "ok", "exitCode"],
      "allOf": [
        {"if": {"properties": {"ok": {"const": True}}, "required": ["ok"]},
         "then": {"properties": {"exitCode": {"const": 0}}, "not": {"required": ["error"]}},
         "else": {"properties": {"exitCode": {"not": {"const": 0}}}, "required": ["error"]}},
      ],
    },
    "error": obj({
      "kind": {"enum": ["operational", "usage", "integrity", "incomplete", "interrupted"]},
      "code": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
      "message": {"type": "string", "minLength": 1},
      "hint": {"type": ["string", "null"]},
    }, ["kind", "code", "message", "hint"]),
    "digest": {"type": "string", "pattern": "^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"},
    "platform": obj({"name": S(), "version": S()}, ["name", "version"]),
    "imagePlatform": obj({"os": S(), "architecture": S(), "variant": S()}, ["os", "architecture"]),
    "signature": obj({"status": {"enum": ["verified", "notChecked", "absent", "signed"]}, "keyId": S()}, ["status"]),
  },
}

def command(name, title, props, required, full_when=(0,)):
    schema = {
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "$id": BASE + f"{name}.schema.json",
      "title": f"openlm-mirror {name} --json" if name != "openlm-mirror" else "openlm-mirror --json (no command, or an unknown one)",
      "description": title,
      "type": "object",
      "allOf": [R("envelope")],
      "properties": {"command": {"const": name}, **props},
      "unevaluatedProperties": False,
    }
    if required:
        schema["if"] = {"properties": {"exitCode": {"enum": list(full_when)}}, "required": ["exitCode"]}
        schema["then"] = {"required": required}
    return schema

D = R("digest")
delta = obj({"bases": arr({"type": "object"}), "omittedBlobs": I(), "omittedBytes": I(), "omittedChecked": B()}, ["bases", "omittedBlobs", "omittedBytes"])
blobStats = obj({"count": I(), "totalBytes": I()}, ["count", "totalBytes"])
commands = []
commands.append(command("openlm-mirror", "Usage errors before a command was recognised.", {}, []))
commands.append(command("copy", "What was copied, one entry per source image (the same shape for one source or many).", {
  "destination": S(),
  "images": arr(obj({"source": S(), "destination": S(), "digest": D, "sourceDigest": D, "mediaType": S(),
                     "imagePlatforms": arr(R("imagePlatform")), "bytesCopied": I(), "blobsCopied": I(), "blobsSkipped": I(), "blobsMounted": I()},
                    ["source", "destination", "digest", "sourceDigest", "mediaType", "imagePlatforms", "bytesCopied", "blobsCopied", "blobsSkipped", "blobsMounted"])),
  "bytesCopied": I(), "seconds": N()}, ["destination", "images", "bytesCopied", "seconds"]))
commands.append(command("resolve", "The lock written, with the lock document itself under `lock` (format: docs/bundle-format.md).", {
  "lockFile": S(), "images": I(), "charts": I(), "blobs": I(), "totalBytes": I(), "lock": {"type": "object"}},
  ["lockFile", "images", "charts", "blobs", "totalBytes", "lock"]))
commands.append(command("export", "The bundle written and signed (status written), or an existing bundle that already verified against the same lock and key, left as it was (status alreadyExported).", {
  "status": {"enum": ["written", "alreadyExported"]}, "bundle": S(), "bundleDigest": D, "signature": R("signature"), "platform": R("platform"), "images": I(), "charts": I(),
  "blobs": blobStats, "fileBytes": I(), "bytesDownloaded": I(), "blobsDownloaded": I(), "blobsReused": I(), "pullSeconds": N(), "writeSeconds": N(), "delta": delta, "parts": arr(S())},
  ["status", "bundle", "bundleDigest", "signature", "platform", "images", "charts", "fileBytes", "bytesDownloaded", "blobsDownloaded", "blobsReused", "pullSeconds", "writeSeconds"]))
commands.append(command("keygen", "The key pair written.", {
  "privateKey": S(), "publicKey": S(), "keyId": S(), "encrypted": B()}, ["privateKey", "publicKey", "keyId", "encrypted"]))
commands.append(command("verify", "The bundle verified offline (every blob read).", {
  "bundle": S(), "bundleDigest": D, "signature": R("signature"), "platform": R("platform"), "images": I(), "charts": I(),
  "blobs": I(), "bytes": I(), "seconds": N(), "parts": I(), "delta": delta}, ["bundle", "bundleDigest", "signature", "platform", "images", "charts", "blobs", "bytes", "seconds"]))
commands.append(command("inspect", "The bundle's head (blobs not read); images and charts as recorded in the bundle manifest.", {
  "bundle": S(), "bundleDigest": D, "signature": R("signature"), "platform": R("platform"), "created": S(),
  "tool": R("platform"), "source": S(), "images": arr({"type": "object", "required": ["reference", "digest"]}),
  "charts": arr({"type": "object", "required": ["name", "version"]}), "blobs": blobStats, "compressed": B()},
  ["bundle", "bundleDigest", "signature", "platform", "images", "charts", "compressed"]))
commands.append(command("import", "What the target registry now holds (or, with dryRun, would).", {
  "registry": S(), "bundleDigest": D, "platform": R("platform"), "signature": R("signature"), "dryRun": B(),
  "images": arr(obj({"source": S(), "target": S(), "digest": D, "mediaType": S(), "status": {"enum": ["created", "moved", "unchanged", "planned"]}},
                    ["source", "target", "digest", "mediaType", "status"])),
  "blobsUploaded": I(), "bytesUploaded": I(), "blobsMounted": I(), "blobsPresent": I(), "bytesPresent": I(), "manifestsPushed": I(), "passes": I(),
  "findings": arr(S()), "problems": arr({"type": "object"})},
  ["registry", "bundleDigest", "platform", "signature", "dryRun", "images", "blobsUploaded", "bytesUploaded", "blobsMounted", "blobsPresent", "bytesPresent", "manifestsPushed", "passes"]))
commands.append(command("load", "Images loaded into the Docker engine; exit 4 (ok false) when images asked for were skipped.", {
  "bundle": S(), "bundleDigest": D, "platform": R("platform"), "signature": R("signature"),
  "engine": obj({"host": S(), "version": S(), "apiVersion": S(), "engineApiVersion": S(), "imagePlatform": R("imagePlatform")}, ["host", "version", "apiVersion", "imagePlatform"]),
  "imagePlatform": R("imagePlatform"),
  "images": arr(obj({"reference": S(), "tag": S(), "digest": D, "manifest": D, "imagePlatform": R("imagePlatform"), "config": D, "imageId": S(), "layers": I(), "size": I()},
                    ["reference", "tag", "digest", "manifest", "imagePlatform", "config", "imageId", "layers", "size"])),
  "skipped": arr(obj({"reference": S(), "digest": D, "kind": {"enum": ["chart", "artifact", "platform", "unsupported"]}, "requested": B(), "reason": S()},
                     ["reference", "digest", "kind", "requested", "reason"])),
  "bytesLoaded": I(), "bytesSpooled": I(), "seconds": N()},
  ["bundle", "bundleDigest", "platform", "signature", "engine", "imagePlatform", "images", "skipped", "bytesLoaded", "bytesSpooled", "seconds"], (0, 4)))
commands.append(command("values", "The Helm values (and node mirror configuration) written.", {
  "bundle": S(), "bundleDigest": D, "platform": R("platform"), "signature": R("signature"), "target": S(), "platformSource": S(),
  "pin": {"enum": ["digest", "tag"]}, "imageCount": I(), "chartCount": I(), "valuesPaths": I(),
  "values": obj({"path": S(), "mode": {"enum": ["override", "rewrite"]}, "input": S()}, ["path", "mode"]),
  "k3sRegistries": S(), "containerdHosts": arr(S()), "notRedirected": arr(S()),
  "imageValues": arr(obj({"path": S(), "source": S(), "target": S()}, ["path", "source", "target"])),
  "noRegistry": B(),
  "valuesFiles": arr(obj({"chart": S(), "chartVersion": S(), "path": S(), "imagePaths": I(), "chartReference": S()}, ["path", "imagePaths"])),
  "chartArchives": arr(S()),
  "warnings": arr(S())},
  ["bundle", "bundleDigest", "platform", "signature", "noRegistry", "pin", "imageCount", "chartCount", "valuesPaths", "valuesFiles", "chartArchives", "imageValues"]))
status = {"enum": ["ok", "missing", "wrong-digest", "incomplete", "error"]}
commands.append(command("check", "The audit of the target registry against the bundle; exit 4 (ok false) when something is missing, 1 when it could not be checked.", {
  "registry": S(), "checkedAt": {"type": "string", "format": "date-time"}, "seconds": N(), "complete": B(),
  "bundle": obj({"path": S(), "digest": D, "platform": R("platform"), "created": S(), "signature": R("signature")}, ["path", "digest", "platform", "signature"]),
  "summary": obj({"images": I(), "ok": I(), "missing": I(), "wrongDigest": I(), "incomplete": I(), "error": I()}, ["images", "ok", "missing", "wrongDigest", "incomplete", "error"]),
  "images": arr(obj({"kind": {"enum": ["image", "chart"]}, "source": S(), "target": S(), "expectedDigest": D, "foundDigest": D, "status": status,
                     "blobsChecked": I(), "missingBlobs": arr(obj({"digest": D, "mediaType": S(), "size": I()}, ["digest", "mediaType", "size"])), "error": S()},
                    ["kind", "source", "target", "expectedDigest", "status", "blobsChecked", "missingBlobs"]))},
  ["registry", "checkedAt", "complete", "bundle", "summary", "images"], (0, 4)))
commands.append(command("serve", "One line when the bundle registry is ready (it keeps serving); on failure to start, the error envelope instead.", {
  "event": {"const": "ready"}, "address": S(), "host": S(), "bundleDigest": D, "platform": R("platform"), "signature": R("signature"),
  "repositories": arr(S()), "images": arr(obj({"source": S(), "digest": D, "mediaType": S(), "names": arr(S())}, ["source", "digest", "mediaType", "names"]))},
  ["event", "address", "host", "bundleDigest", "platform", "signature", "repositories", "images"]))

commands.append(command("node-archive", "The node image archive written (k3s/RKE2 auto-import, ctr images import).", {
  "path": S(), "compression": {"enum": ["zstd", "none"]}, "bundleDigest": D, "platform": R("platform"), "signature": R("signature"),
  "blobCount": I(), "blobBytes": I(),
  "images": arr(obj({"source": S(), "digest": D, "digestReference": S(), "platforms": arr(S())}, ["source", "digest", "digestReference"])),
  "skipped": arr(S())},
  ["path", "compression", "bundleDigest", "platform", "signature", "blobCount", "blobBytes", "images"]))
side = obj({"kind": S(), "platform": S(), "version": S(), "path": S()}, None, strict=False)
commands.append(command("diff", "What changes between two releases (bundles, locks or receipts).", {
  "old": side, "new": side, "added": I(), "removed": I(), "changed": I(), "unchanged": I(),
  "images": arr(obj({"repository": S(), "change": {"enum": ["added", "removed", "changed", "unchanged"]}, "oldTag": S(), "newTag": S(), "oldDigest": S(), "newDigest": S()}, ["repository", "change"])),
  "charts": arr({"type": "object"}), "valuesAdded": arr(S()), "valuesRemoved": arr(S()),
  "delta": obj({"blobs": I(), "bytes": I(), "fullBytes": I()}, ["blobs", "bytes", "fullBytes"])},
  ["old", "new", "added", "removed", "changed", "unchanged", "images", "delta"]))
commands.append(command("inventory", "The receipt written by asking the target what it holds of a release.", {
  "receipt": S(), "registry": S(), "platform": R("platform"), "images": I(), "absent": I(), "incompleteImages": I(), "contents": I(), "bytes": I()},
  ["receipt", "registry", "platform", "images", "absent", "incompleteImages", "contents", "bytes"]))
commands.append(command("preflight", "A verdict per check of every endpoint a release (or the air-gapped registry) needs, and the allow-list; exit 1 (ok false, the report kept) when a check failed.", {
  "input": S(), "proxy": S(), "reachable": B(), "allowList": arr(S()),
  "endpoints": arr(obj({"address": S(), "host": S(), "port": I(), "scheme": {"enum": ["http", "https"]}, "role": {"enum": ["registry", "token-realm", "cdn", "proxy", "chart-repository", "chart-archive"]}, "via": S()},
                       ["address", "host", "port", "scheme", "role"])),
  "checks": arr(obj({"endpoint": S(), "check": {"enum": ["dns", "tcp", "tls", "proxy", "auth", "manifest", "index", "blob"]}, "status": {"enum": ["ok", "skipped", "failed"]}, "detail": S(), "hint": S()},
                    ["endpoint", "check", "status", "detail"])),
  "summary": obj({"checks": I(), "ok": I(), "skipped": I(), "failed": I()}, ["checks", "ok", "skipped", "failed"])},
  ["input", "proxy", "reachable", "allowList", "endpoints", "checks", "summary"]))
commands.append(command("split", "split prints text; with --json only its usage errors are documents.", {}, []))
commands.append(command("join", "join prints text; with --json only its usage errors are documents.", {}, []))

commands.append(command("login", "Where the credentials were stored (the secret is never printed).", {
  "registry": S(), "authFile": S(), "helper": S(), "username": S()}, ["registry", "authFile", "username"]))
commands.append(command("logout", "Whether credentials were removed (exit 0 also when there were none, as docker logout).", {
  "registry": S(), "authFile": S(), "helper": S(), "removed": B()}, ["registry", "authFile", "removed"]))
commands.append(command("completion", "completion prints a shell script, not JSON; with --json only its usage errors are documents.", {}, []))

def write(name, doc):
    with open(os.path.join(out, name), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
write("common.schema.json", common)
for c in commands:
    write(c["$id"].rsplit("/", 1)[1], c)
