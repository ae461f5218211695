#!/usr/bin/python3
"""Generate the oslo.policy oracle for auth's policy tests.

Usage (from this directory, with Debian's python3-oslo.policy installed):

    /usr/bin/python3 gen_oracle.py ZAQAR_SOURCE_DIR [ZAQAR_COMMIT]

ZAQAR_SOURCE_DIR is a checkout of OpenStack Zaqar, or at least of its
zaqar/common/policies (ZAQAR_COMMIT then names the commit it came from,
e.g. `git archive COMMIT zaqar/common/policies | tar -x -C DIR`); its rules
(zaqar/common/policies/*.py) are registered on an oslo.policy Enforcer
exactly as Zaqar's zaqar/transport/acl.py registers them. The script writes

* zaqar.policy.yaml.sample, zaqar.policy.yaml, zaqar.policy.json: Zaqar's
  sample policy as oslopolicy-sample-generator writes it (commented, as
  `tox -egenpolicy` does; rules only; JSON);
* random.yaml: rules built at random (fixed seed) from every operator;
* oracle.json: for each policy file here, each rule and each caller, what
  oslo.policy's Enforcer.enforce decides; and for rule texts, what oslo's
  parser makes of them (its str() of the tree, or that it fails).

The Go tests read only the files; they never run Python.
"""

import json
import logging
import os
import random
import subprocess
import sys
import types

from oslo_config import cfg
from oslo_policy import _parser
from oslo_policy import generator
from oslo_policy import policy
from oslo_policy import version

HERE = os.path.dirname(os.path.abspath(__file__))

# The callers, as Go's auth.Credentials fields. to_creds turns them into the
# credentials dict oslo.policy is given (see auth.Credentials).
CALLERS = {
    "member-p1": {"roles": ["member", "reader"], "project_id": "p1", "user_id": "u1"},
    "admin-p1": {"roles": ["admin"], "project_id": "p1", "user_id": "u2"},
    "Admin-p1": {"roles": ["Admin", "member"], "project_id": "p1"},
    "member-p2": {"roles": ["member"], "project_id": "p2", "user_id": "u3"},
    "admin-p2": {"roles": ["admin"], "project_id": "p2", "user_id": "u4"},
    "is_admin-p1": {"roles": [], "project_id": "p1", "is_admin": True},
    "janitor-p1": {"roles": ["janitor", "member"], "project_id": "p1", "user_id": "u2"},
    "nobody": {"roles": []},
}

# The targets: what Zaqar passes (nothing), and what this service passes
# (the caller's project, here p1).
TARGETS = {"none": {}, "p1": {"project_id": "p1"}}

# Rule names asked of every policy besides those it defines.
UNDEFINED = ["no:such:rule", "claims:get_all", "cluster:admin"]

# Rule texts for the parser table: oslo's str() of each, or that it fails.
TEXTS = [
    "", "@", "!", "role:admin", "role:", "rule:a:b", "is_admin:True", "is_admin:False",
    "role:a or role:b and role:c", "role:a and role:b or role:c", "not role:a and role:b",
    "not role:a or role:b", "role:a or not role:b and role:c", "(role:a)", "((role:a or role:b)) and role:c",
    "role:a and (role:b)", "not not role:a", "not (role:a or role:b)",
    "role:a or role:b or role:c and role:d and role:e or role:f", "role:a and role:b and role:c or role:d",
    "role:a or (role:b and role:c) and role:d", "role:x and (role:a and role:b) and role:c",
    "(role:a and role:b) and role:c", "role:a or (role:b or role:c) and role:d",
    "NOT role:a", "role:a AND role:b", "role:a Or role:b", "(not(role:a))", "((((role:a))))",
    "True:%(x)s", "'Member':%(role.name)s", "\"x\":y", "1:1", "00:0", "None:None",
    "project_id:%(project_id)s", "project_id:%%", "project_id:a%%b", "role:%(project_id)s",
    "user_id:%(user_id)s and project_id:%(project_id)s",
    "role:a\u3000or\u2003role:b", "role:a\x1cor\x1drole:b", "role:a\u00a0or\u0085role:b", "\trole:a\n",
    # Refused by both: oslo logs "Failed to understand rule" and denies, or
    # returns something that is not a check and fails when enforcing.
    "  ", "and", "or", "not", "(", ")", "()", "role:a or", "or role:a", "role:a or or role:b",
    "role:a)", "(role:a", "role:a role:b", "role:a not role:b", "x", "admin", "'x'", "role:a 'x'",
    "'x' or role:a", "role:a and", "not and role:a", "(role:a))", "((role:a)",
    # Refused by both: oslo raises while enforcing (a 500 in Zaqar).
    ":x", "1a:x", "and:x", "not:x", "a..b:x", "http://example.com/check", "https:x",
    "project_id.x:p1", "roles.name:admin", "project_id:%(project_id)d", "project_id:%",
]

# Accepted by oslo but refused here, and why (docs/security.md).
STRICTER = {
    "project_id:%s": "a conversion other than %(key)s",
    "project_id:%(project_id)r": "a conversion other than %(key)s",
    "a-b:c": "a left side that is neither a name nor a literal",
    "x.y:z": "a dotted (nested) credential path",
    "0x1F:x": "a literal other than True, False, None, a decimal integer or a plain quoted string",
    "1.5:1.5": "a literal other than True, False, None, a decimal integer or a plain quoted string",
    "'a\\'b':x": "a literal other than True, False, None, a decimal integer or a plain quoted string",
    "f(x):y": "a left side that is neither a name nor a literal",
    "proj\u00e9t:x": "a non-ASCII name",
}

LISTS = [
    [], [[]], [["role:a"]], ["role:a"], [["role:a", "role:b"], ["role:c"]], ["@", "!"],
    [["role:a or role:b"]], [["role:a b"]], [[], ["role:a"], []],
]

# Lists accepted by oslo but refused here (as STRICTER).
LIST_STRICTER = [([["not role:a"]], "a left side that is neither a name nor a literal")]

LIST_ERRORS = [[[""]], [["x"]], [["and:x"]], [[":x"]], [["http:x"]]]

# Which oslo log records mean "failed to understand".
class Failures(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record):
        self.count += 1


FAILURES = Failures()
logging.getLogger("oslo_policy._parser").addHandler(FAILURES)
logging.getLogger("oslo_policy._parser").propagate = False
logging.getLogger("oslo_policy.policy").setLevel(logging.ERROR)


def load_zaqar_rules(src):
    """Import zaqar.common.policies without Zaqar's package __init__."""
    for name, sub in (("zaqar", ""), ("zaqar.common", "common")):
        mod = types.ModuleType(name)
        mod.__path__ = [os.path.join(src, "zaqar", sub)]
        sys.modules[name] = mod
    from zaqar.common import policies
    return list(policies.list_rules())


def to_creds(caller):
    """The credentials dict oslo.policy sees for a Go auth.Credentials."""
    creds = {"roles": list(caller.get("roles", [])), "is_admin": caller.get("is_admin", False)}
    if caller.get("project_id"):
        creds["project_id"] = creds["project"] = caller["project_id"]
    if caller.get("user_id"):
        creds["user_id"] = creds["user"] = caller["user_id"]
    return creds


def enforcer(defaults, path):
    conf = cfg.ConfigOpts()
    conf([], project="zaqar")
    # Zaqar's Enforcer(conf): policy_default_rule "default", the file if any.
    enf = policy.Enforcer(conf, policy_file=path)
    enf.register_defaults(defaults)
    # This service's own rule, registered like upstream's.
    enf.register_default(policy.RuleDefault("cluster:admin", "role:admin"))
    enf.load_rules()
    return enf


def checks(c):
    yield c
    for sub in getattr(c, "rules", None) or ([c.rule] if hasattr(c, "rule") else []):
        yield from checks(sub)


def parse_outcome(rule):
    """oslo's str() of the parsed rule (text or list), or None if oslo fails
    on it: logs that it cannot understand it, returns something that is not
    a check, or raises while enforcing it."""
    before = FAILURES.count
    parsed = _parser.parse_rule(rule)
    if FAILURES.count != before or not isinstance(parsed, _parser._checks.BaseCheck):
        return None
    if any(c.__class__.__name__ in ("HttpCheck", "HttpsCheck") for c in checks(parsed)):
        return None  # a remote call; not made here
    enf = policy.Enforcer(cfg.ConfigOpts(), use_conf=False)
    enf.rules = policy.Rules({}, "default")
    for caller in CALLERS.values():
        for target in TARGETS.values():
            try:
                parsed(target, to_creds(caller), enf)
            except Exception:
                return None
    return str(parsed)


def random_rules(rng, n):
    atoms = ["role:admin", "role:member", "role:reader", "role:Admin", "role:janitor", "roles:member",
             "is_admin:True", "is_admin:False", "project_id:%(project_id)s", "user_id:u1", "user:u2",
             "'p1':%(project_id)s", "True:%(missing)s", "rule:context_is_admin", "rule:admin_or_owner",
             "rule:undefined_rule", "@", "!", "project:p2", "role:%(project_id)s"]

    def word(w):
        return rng.choice([w, w.upper(), w.capitalize()])

    def expr(depth):
        r = rng.random()
        if depth > 3 or r < 0.35:
            return rng.choice(atoms)
        if r < 0.5:
            return word("not") + " " + expr(depth + 1)
        if r < 0.65:
            return "(" + expr(depth + 1) + ")"
        op = word(rng.choice(["and", "or"]))
        parts = [expr(depth + 1) for _ in range(rng.randint(2, 4))]
        return (" " + op + " ").join(parts)

    rules = {}
    for i in range(n):
        text = expr(0)
        # Parentheses against their neighbours, extra blanks: oslo's tokenizer.
        if rng.random() < 0.3:
            text = text.replace("( ", "(").replace(" )", ")")
        if rng.random() < 0.2:
            text = text.replace(" ", "  \t")
        rules["r%03d" % i] = text
    return rules


def random_soup(rng, n):
    pieces = ["role:a", "role:b", "and", "or", "not", "(", ")", "'s'", "@", "!", "AND", "Not"]
    out = []
    for _ in range(n):
        out.append(" ".join(rng.choice(pieces) for _ in range(rng.randint(1, 7))))
    return out


def write_samples(defaults):
    generator.get_policies_dict = lambda namespaces: {"zaqar": defaults}
    generator._generate_sample(["zaqar"], os.path.join(HERE, "zaqar.policy.yaml.sample"))
    generator._generate_sample(["zaqar"], os.path.join(HERE, "zaqar.policy.yaml"), include_help=False)
    generator._generate_sample(["zaqar"], os.path.join(HERE, "zaqar.policy.json"), output_format="json")


def main():
    src = sys.argv[1]
    if len(sys.argv) > 2:
        commit = sys.argv[2]
    else:
        commit = subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    defaults = load_zaqar_rules(src)
    write_samples(defaults)

    rng = random.Random(20240601)
    rand = random_rules(rng, 150)
    with open(os.path.join(HERE, "random.yaml"), "w") as f:
        f.write("# Generated by gen_oracle.py (fixed seed): rules built at random from every operator.\n")
        for name, text in rand.items():
            f.write("%s: %s\n" % (json.dumps(name), json.dumps(text)))

    files = ["", "zaqar.policy.yaml", "zaqar.policy.json", "zaqar-2017.policy.json", "operators.yaml",
             "legacy-lists.json", "random.yaml"]
    decisions = []
    for name in files:
        enf = enforcer(defaults, os.path.join(HERE, name) if name else None)
        for rule in sorted(set(enf.rules) | set(UNDEFINED)):
            for caller_name, caller in CALLERS.items():
                for target_name, target in TARGETS.items():
                    allowed = bool(enf.enforce(rule, dict(target), to_creds(caller)))
                    decisions.append([name, rule, caller_name, target_name, allowed])

    parses = []
    for text in TEXTS + random_soup(rng, 150):
        parses.append({"text": text, "oslo": parse_outcome(text)})
    for text, why in STRICTER.items():
        out = parse_outcome(text)
        if out is None:
            sys.exit("oslo refuses %r too: move it to TEXTS" % text)
        parses.append({"text": text, "oslo": out, "refused_here": why})
    for rule in LISTS + LIST_ERRORS:
        parses.append({"list": rule, "oslo": parse_outcome(rule)})
    for rule, why in LIST_STRICTER:
        out = parse_outcome(rule)
        if out is None:
            sys.exit("oslo refuses %r too: move it to LIST_ERRORS" % rule)
        parses.append({"list": rule, "oslo": out, "refused_here": why})

    oracle = {
        "zaqar_commit": commit,
        "oslo_policy": version.version_info.version_string(),
        "callers": CALLERS,
        "targets": TARGETS,
        "decisions_columns": ["policy file", "rule", "caller", "target", "allowed"],
        "decisions": decisions,
        "parses": parses,
        "defaults": {d.name: d.check_str for d in defaults},
    }
    with open(os.path.join(HERE, "oracle.json"), "w") as f:
        f.write("{\n")
        keys = list(oracle)
        for i, key in enumerate(keys):
            sep = ",\n" if i < len(keys) - 1 else "\n"
            value = oracle[key]
            if isinstance(value, list):
                f.write("%s: [\n" % json.dumps(key))
                f.write(",\n".join("  " + json.dumps(v, ensure_ascii=False) for v in value))
                f.write("\n]" + sep)
            else:
                f.write("%s: %s%s" % (json.dumps(key), json.dumps(value, ensure_ascii=False, sort_keys=True), sep))
        f.write("}\n")
    print("%d decisions, %d parses" % (len(decisions), len(parses)))


if __name__ == "__main__":
    main()
