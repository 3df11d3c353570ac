#!/usr/bin/env python3
"""Expand/contract check of SQL migrations (ADR 0035).

During a canary or blue-green release two versions of a service run against
one database, and the new version's migrations have already run. So a
migration may only *expand* the schema (add a table, a nullable column, a
column with a default, an index, a constraint NOT VALID...). A *contract*
step (dropping or renaming a table or column, changing a column's type,
making a column NOT NULL, adding a NOT NULL column without a default) is
allowed only once no running release uses what it removes, and must say so
on the line before it:

    -- contract: <which release stopped using it>
    ALTER TABLE payments DROP COLUMN legacy_ref;

Usage:
  k8s-migrations-check.py [--since VERSION] DIR...   check migrations newer than VERSION
  k8s-migrations-check.py --self-test                prove the check refuses and accepts

Migrations at or below --since (the ones released before this rule) are not
checked. Exit status 1 lists every offending statement.
"""

import os
import re
import sys
import tempfile

BASELINE = "20261207000000"

CONTRACT = [
    (re.compile(r"\bDROP\s+TABLE\b", re.I), "drops a table"),
    (re.compile(r"\bALTER\s+TABLE\b[^;]*\bDROP\s+(COLUMN\s+)?(IF\s+EXISTS\s+)?(?!CONSTRAINT\b|TRIGGER\b|DEFAULT\b|NOT\b)\w+", re.I), "drops a column"),
    (re.compile(r"\bRENAME\b", re.I), "renames a table or column"),
    (re.compile(r"\bALTER\s+COLUMN\b[^;]*\bTYPE\b", re.I), "changes a column's type"),
    (re.compile(r"\bALTER\s+COLUMN\b[^;]*\bSET\s+NOT\s+NULL\b", re.I), "makes a column NOT NULL"),
    (re.compile(r"\bADD\s+(COLUMN\s+)?(IF\s+NOT\s+EXISTS\s+)?\w+\s+[^,;]*\bNOT\s+NULL\b(?![^,;]*\bDEFAULT\b)", re.I),
     "adds a NOT NULL column without a default"),
]


def statements(text):
    """Yields (line number, statement text, preceding comment lines)."""
    comments, buf, start = [], [], None
    for no, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not buf and stripped.startswith("--"):
            comments.append(stripped)
            continue
        if not stripped and not buf:
            comments = []
            continue
        code = line.split("--", 1)[0]
        if start is None:
            start = no
        buf.append(code)
        if ";" in code:
            yield start, " ".join(buf), comments
            comments, buf, start = [], [], None
    if buf:
        yield start, " ".join(buf), comments


def check_file(path):
    problems = []
    with open(path) as f:
        text = f.read()
    for no, stmt, comments in statements(text):
        if any(c.lower().startswith("-- contract:") for c in comments):
            continue
        for pattern, what in CONTRACT:
            if pattern.search(stmt):
                problems.append("%s:%d: %s (expand/contract: mark it `-- contract: <release>` once no "
                                "running release needs it, ADR 0035): %s" % (path, no, what, " ".join(stmt.split())[:120]))
                break
    return problems


def check(dirs, since):
    problems, checked = [], 0
    for d in dirs:
        for name in sorted(os.listdir(d)):
            if not name.endswith(".sql"):
                continue
            version = name.split("_", 1)[0]
            if version <= since:
                continue
            checked += 1
            problems += check_file(os.path.join(d, name))
    return checked, problems


def self_test():
    cases = {
        "drop column": ("ALTER TABLE t DROP COLUMN c;", False),
        "drop column short": ("ALTER TABLE t DROP c;", False),
        "drop table": ("DROP TABLE t;", False),
        "rename": ("ALTER TABLE t RENAME COLUMN a TO b;", False),
        "type": ("ALTER TABLE t ALTER COLUMN c TYPE bigint;", False),
        "set not null": ("ALTER TABLE t ALTER COLUMN c SET NOT NULL;", False),
        "add not null no default": ("ALTER TABLE t ADD COLUMN c int NOT NULL;", False),
        "add nullable": ("ALTER TABLE t ADD COLUMN c int;", True),
        "add not null with default": ("ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0;", True),
        "create table": ("CREATE TABLE t (id bigint NOT NULL PRIMARY KEY);", True),
        "drop trigger": ("DROP TRIGGER x ON t;", True),
        "drop constraint": ("ALTER TABLE t DROP CONSTRAINT c;", True),
        "marked contract": ("-- contract: 2027.01 stopped reading c\nALTER TABLE t DROP COLUMN c;", True),
    }
    failures = []
    with tempfile.TemporaryDirectory() as d:
        for i, (name, (sql, ok)) in enumerate(sorted(cases.items())):
            for f in os.listdir(d):
                os.remove(os.path.join(d, f))
            with open(os.path.join(d, "2099010100%04d_case.sql" % i), "w") as f:
                f.write(sql + "\n")
            _, problems = check([d], BASELINE)
            if (not problems) != ok:
                failures.append("%s: expected %s, got %s" % (name, "accepted" if ok else "refused", problems or "accepted"))
    if failures:
        print("k8s-migrations-check self-test FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("k8s-migrations-check: self-test passed (%d cases)" % len(cases), file=sys.stderr)
    return 0


def main(argv):
    if argv[:1] == ["--self-test"]:
        return self_test()
    since = BASELINE
    if argv[:1] == ["--since"]:
        since, argv = argv[1], argv[2:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    checked, problems = check(argv, since)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print("k8s-migrations-check: %d migration(s) newer than %s are expand-only" % (checked, since), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
