#!/usr/bin/env python3
"""Validates FHIR R4 JSON resources against the FHIR R4 (4.0.1) base specification.

Usage: fhir_validate.py FILE [FILE ...]   (each FILE one resource, e.g. a Bundle)

The structural validation is `fhir.resources` 6.4.0, the last release whose models are
generated from FHIR R4 4.0.1 (6.5.0 and later are R4B 4.3.0 or R5), with pydantic 1.x (6.4.0
does not work with pydantic 2): every element known and of its type, cardinalities, required
elements, one value[x] at most. Install it with
    python3 -m pip install --target DIR 'fhir.resources==6.4.0' 'pydantic[email]>=1.10,<2'
and put DIR on PYTHONPATH.

Those models do not check codes of required bindings, nor references inside a bundle, nor that
a QuestionnaireResponse fits its Questionnaire, so this script checks those it can see too:
the required-binding codes of the elements aftercare writes, that each `urn:uuid:` reference
resolves to an entry, that fullUrls are unique, and, given the Questionnaire too, that every
answered item is one of its items with an answer of the item's type.

Exit status 0 when every file is valid; 1 (with each problem on stderr) otherwise.
"""

import json
import sys

import fhir.resources
from fhir.resources import construct_fhir_element

R4 = "4.0.1"

# Required bindings (R4) of the elements aftercare writes.
CODES = {
    "Bundle.type": {"document", "message", "transaction", "transaction-response", "batch",
                    "batch-response", "history", "searchset", "collection"},
    "status:Questionnaire": {"draft", "active", "retired", "unknown"},
    "status:CodeSystem": {"draft", "active", "retired", "unknown"},
    "status:QuestionnaireResponse": {"in-progress", "completed", "amended",
                                     "entered-in-error", "stopped"},
    "status:Observation": {"registered", "preliminary", "final", "amended", "corrected",
                           "cancelled", "entered-in-error", "unknown"},
    "status:Consent": {"draft", "proposed", "active", "rejected", "inactive",
                       "entered-in-error"},
    "CodeSystem.content": {"not-present", "example", "fragment", "complete", "supplement"},
    "Questionnaire.item.type": {"group", "display", "boolean", "decimal", "integer", "date",
                                "dateTime", "time", "string", "text", "url", "choice",
                                "open-choice", "attachment", "reference", "quantity"},
    "Questionnaire.item.enableWhen.operator": {"exists", "=", "!=", ">", "<", ">=", "<="},
    "Consent.provision.type": {"deny", "permit"},
    "Narrative.status": {"generated", "extensions", "additional", "empty"},
    "ContactPoint.system": {"phone", "fax", "email", "pager", "url", "sms", "other"},
}

# The answer value[x] each Questionnaire item type takes.
ANSWER = {
    "boolean": "valueBoolean", "decimal": "valueDecimal", "integer": "valueInteger",
    "date": "valueDate", "dateTime": "valueDateTime", "time": "valueTime",
    "string": "valueString", "text": "valueString", "url": "valueUri",
    "choice": "valueCoding", "quantity": "valueQuantity",
}


class Problems:
    def __init__(self):
        self.items = []

    def add(self, where, what):
        self.items.append(f"{where}: {what}")


def code(problems, where, key, value):
    if value is not None and value not in CODES[key]:
        problems.add(where, f"{value!r} is not a code of {key}")


def check_codes(problems, where, r):
    kind = r.get("resourceType")
    if f"status:{kind}" in CODES:
        code(problems, where, f"status:{kind}", r.get("status"))
    if "text" in r and isinstance(r["text"], dict):
        code(problems, f"{where}.text", "Narrative.status", r["text"].get("status"))
        div = r["text"].get("div", "")
        if not div.startswith('<div xmlns="http://www.w3.org/1999/xhtml"'):
            problems.add(f"{where}.text.div", "must be an XHTML div")
    for t in r.get("telecom", []) or []:
        code(problems, f"{where}.telecom", "ContactPoint.system", t.get("system"))
    if kind == "Bundle":
        code(problems, where, "Bundle.type", r.get("type"))
    if kind == "CodeSystem":
        code(problems, where, "CodeSystem.content", r.get("content"))
        codes = [c.get("code") for c in r.get("concept", [])]
        if len(codes) != len(set(codes)):
            problems.add(where, "csd-1: codes must be unique")
    if kind == "Consent":
        code(problems, f"{where}.provision", "Consent.provision.type",
             (r.get("provision") or {}).get("type"))
        if not (r.get("policy") or r.get("policyRule")):
            problems.add(where, "ppc-1: either a policy or a policyRule")
    if kind == "Questionnaire":
        def walk(items, path):
            for it in items or []:
                p = f"{path}[{it.get('linkId')}]"
                code(problems, p, "Questionnaire.item.type", it.get("type"))
                for ew in it.get("enableWhen", []) or []:
                    code(problems, p, "Questionnaire.item.enableWhen.operator",
                         ew.get("operator"))
                if it.get("type") == "group" and not it.get("item"):
                    problems.add(p, "que-1: a group must have items")
                if it.get("answerOption") and it.get("type") not in ("choice", "open-choice"):
                    problems.add(p, "que-5: answerOption only on choice items")
                walk(it.get("item"), p)
        walk(r.get("item"), where)


def questionnaire_items(q):
    out = {}

    def walk(items):
        for it in items or []:
            out[it["linkId"]] = it
            walk(it.get("item"))
    walk(q.get("item"))
    return out


def check_response(problems, where, qr, questionnaires):
    q = questionnaires.get(qr.get("questionnaire"))
    if q is None:
        if questionnaires:
            problems.add(where, f"answers an unknown questionnaire {qr.get('questionnaire')!r}")
        return
    items = questionnaire_items(q)

    def walk(answered, path):
        for it in answered or []:
            link = it.get("linkId")
            p = f"{path}[{link}]"
            defn = items.get(link)
            if defn is None:
                problems.add(p, "not an item of the questionnaire")
                continue
            if it.get("answer") and it.get("item"):
                problems.add(p, "qrs-1: an item has answers or items, not both")
            want = ANSWER.get(defn["type"])
            for a in it.get("answer", []) or []:
                if want and want not in a:
                    problems.add(p, f"a {defn['type']} item answers with {want}")
            if len(it.get("answer", []) or []) > 1 and not defn.get("repeats"):
                problems.add(p, "several answers to an item that does not repeat")
            walk(it.get("item"), p)
    walk(qr.get("item"), where)
    answered = {i.get("linkId") for i in qr.get("item", []) or []}
    for link, defn in items.items():
        top = any(link == i.get("linkId") for i in q.get("item", []))
        if top and defn.get("required") and link not in answered:
            problems.add(where, f"required item {link!r} unanswered")


def references(node):
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield ref
        for v in node.values():
            yield from references(v)
    elif isinstance(node, list):
        for v in node:
            yield from references(v)


def main(paths):
    if fhir.resources.__fhir_version__ != R4:
        print(f"fhir.resources {fhir.resources.__version__} models FHIR "
              f"{fhir.resources.__fhir_version__}, not R4 {R4}", file=sys.stderr)
        return 2
    problems = Problems()
    docs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            docs.append((path, json.load(f)))
    questionnaires = {d.get("url"): d for _, d in docs if d.get("resourceType") == "Questionnaire"}
    counts = {}
    for path, doc in docs:
        kind = doc.get("resourceType")
        try:
            construct_fhir_element(kind, doc)
        except Exception as e:  # pydantic.ValidationError, or an unknown resourceType
            problems.add(path, f"not a valid R4 {kind}: {e}")
        resources = [(path, doc)]
        if kind == "Bundle":
            entries = doc.get("entry", []) or []
            full_urls = [e.get("fullUrl") for e in entries if e.get("fullUrl")]
            if len(full_urls) != len(set(full_urls)):
                problems.add(path, "bdl-7: fullUrls must be unique")
            known = set(full_urls)
            for ref in references(doc):
                if ref.startswith("urn:uuid:") and ref not in known:
                    problems.add(path, f"reference {ref} resolves to no entry")
            resources += [(f"{path}#entry[{i}]", e.get("resource", {}))
                          for i, e in enumerate(entries)]
        for where, r in resources:
            counts[r.get("resourceType")] = counts.get(r.get("resourceType"), 0) + 1
            check_codes(problems, where, r)
            if r.get("resourceType") == "QuestionnaireResponse":
                check_response(problems, where, r, questionnaires)
    for p in problems.items:
        print(p, file=sys.stderr)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"fhir.resources {fhir.resources.__version__} (FHIR {R4}): {summary}: "
          f"{'valid' if not problems.items else f'{len(problems.items)} problems'}")
    return 1 if problems.items else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
