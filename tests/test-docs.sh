#!/bin/sh
# test-docs: the docs name what the code has, and only that, where a script can tell:
#   - config: every section and key of daemon/config.c's key table (and the keys of
#     [export NAME] sections) is a row of docs/config.md, with the same default,
#     type, SIGHUP column ("restart" for K_RESTART keys, else "yes") and, where the
#     doc gives one as LO–HI, range, and "power of two" in the range of K_POW2 keys;
#     every key row in the doc is in the code;
#   - API: every route daemon/api.c and daemon/web.c serve (method + path) is in
#     docs/api.md, and every route the doc names is served;
#   - wire: every message type of proto/wire.h is a row of docs/protocol.md's message
#     table (code, name, sender, payload bounds from proto/wire.c's table) and has a
#     "### " section; every row of the table is a type of the code; the same for
#     the error codes (enum wire_code, "Codes on the wire");
#   - CLI: every command of cli/bkstorctl.c's table is in `bkstorctl --help` and in
#     docs/cli.md; every `bkstorctl CMD` that docs/ and README.md name exists;
#   - every source file and `test-x` that docs/ and README.md name exists.
# Each failure names the item and the file it is missing from.
set -u
src="${top_srcdir:-$(dirname "$0")/..}"
bld="${top_builddir:-.}"
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 missing"; exit 77; }
ctl="$bld/cli/bkstorctl"
help_out=$(mktemp /tmp/bks-docs-XXXXXX)
trap 'rm -f "$help_out"' EXIT
if [ -x "$ctl" ]; then "$ctl" --help >"$help_out" 2>&1 || echo "bkstorctl --help failed" >"$help_out"
else : >"$help_out"; fi
python3 - "$src" "$help_out" <<'PY'
import os, re, sys

src, help_path = sys.argv[1], sys.argv[2]
fails = 0
checked = {}


def rd(rel):
    with open(os.path.join(src, rel), encoding="utf-8") as f:
        return f.read()


def fail(msg):
    global fails
    fails += 1
    print("FAIL - " + msg)


def ok(what, n):
    checked[what] = n
    print("ok   - %s: %d checked" % (what, n))


def strip_comments(c):
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", c, flags=re.S)


def c_args(text, start):
    """Top-level comma-separated arguments of the call whose '(' is at text[start]."""
    depth, cur, out, i, instr = 0, "", [], start, False
    while i < len(text):
        ch = text[i]
        if instr:
            cur += ch
            if ch == "\\":
                cur += text[i + 1]
                i += 1
            elif ch == '"':
                instr = False
        elif ch == '"':
            instr = True
            cur += ch
        elif ch in "({[":
            depth += 1
            if depth > 1:
                cur += ch
        elif ch in ")}]":
            depth -= 1
            if depth == 0:
                out.append(cur.strip())
                return out, i
            cur += ch
        elif ch == "," and depth == 1:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    raise ValueError("unbalanced")


def c_string(expr):
    """The value of one or more adjacent C string literals."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', expr)
    return "".join(p.replace('\\"', '"').replace("\\\\", "\\") for p in parts)


def md_sections(md, level):
    """{heading: body} for headings of exactly `level` #s."""
    out, cur, buf = {}, None, []
    for line in md.splitlines():
        m = re.match(r"^(#+) (.*)$", line)
        if m and len(m.group(1)) <= level:
            if cur is not None:
                out[cur] = "\n".join(buf)
            cur, buf = (m.group(2).strip() if len(m.group(1)) == level else None), []
        elif cur is not None:
            buf.append(line)
    if cur is not None:
        out[cur] = "\n".join(buf)
    return out


def md_tables(body):
    """Each table in body as a list of {column: cell} dicts."""
    tables, rows, head = [], None, None
    for line in body.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if head is None:
                head, rows = [c.lower() for c in cells], []
            elif not set(line) <= set("|- "):
                rows.append(dict(zip(head, cells)))
        elif head is not None:
            tables.append(rows)
            head = None
    return tables


def ticks(cell):
    return re.findall(r"`([^`]*)`", cell)


# ---------------------------------------------------------------- config
cfg_c = strip_comments(rd("daemon/config.c"))
cfg_md = rd("docs/config.md")
m = re.search(r"sect_name\[S_COUNT\]\s*=\s*\{(.*?)\};", cfg_c, re.S)
sections = re.findall(r'"([a-z]+)"', m.group(1))
cfg_h = strip_comments(rd("daemon/config.h")) + strip_comments(rd("storage/arr_limits.h"))
cfg_consts = {dm.group(1): dm.group(2) for dm in
              re.finditer(r"^#define (\w+) \(?(\d+)u?\b[^\n]*$", cfg_h, re.M)}


def cfg_eval(expr):
    """A bound of the key table: numbers, KB/MB/TB(), * and -, #defined names."""
    e = expr.replace("UINT64_MAX", str(2 ** 64 - 1))
    e = re.sub(r"\b([A-Z][A-Z0-9_]+)\b(?!\()", lambda x: cfg_consts.get(x.group(1), x.group(1)), e)
    return int(eval(e, {"__builtins__": {}, "KB": lambda x: x << 10,
                        "MB": lambda x: x << 20, "TB": lambda x: x << 40}))


def doc_quantity(q, dur):
    """'64K', '64 B', '1M', '1s', '10m', '12h', '1 day', '7 days', '300' -> a number."""
    qm = re.fullmatch(r"(\d+)\s*(B|K|M|G|T|s|m|h|days?)?", q.strip())
    if not qm:
        return None
    v, u = int(qm.group(1)), qm.group(2) or ""
    mul = ({"": 1, "s": 1, "m": 60, "h": 3600, "day": 86400, "days": 86400} if dur else
           {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40})
    return v * mul[u] if u in mul else None


tbl = cfg_c[cfg_c.index("static const ckey keys[]"):]
tbl = tbl[:tbl.index("\n};")]
code_keys = {}  # (section, key) -> dict
nrange = 0
for km in re.finditer(r"\b(KA?)\(", tbl):
    a, _ = c_args(tbl, km.end() - 1)
    sect, name, typ, dflt, flags = a[0].lower(), c_string(a[1]), a[2], c_string(a[6]), a[7]
    lo, hi = (cfg_eval(a[4]), cfg_eval(a[5])) if km.group(1) == "K" else (None, None)
    code_keys[(sect, name)] = {"type": typ, "default": dflt, "min": lo, "max": hi,
                               "restart": "R" in re.findall(r"\w+", flags),
                               "pow2": "K_POW2" in flags}
# [export NAME]: the keys set_export() takes, and the defaults new_export() sets.
body = cfg_c[cfg_c.index("static int set_export("):]
body = body[:body.index("\n}\n")]
export_keys = re.findall(r'!strcmp\(key, "([a-z_]+)"\)', body)
nbody = cfg_c[cfg_c.index("static int new_export("):]
nbody = nbody[:nbody.index("\n}\n")]
export_dflt = {}
for am in re.finditer(r"((?:nl->\w+\s*=\s*)+)(\d+);", nbody):
    for f in re.findall(r"nl->(\w+)", am.group(1)):
        export_dflt[f] = am.group(2)
squash_words = re.search(r'"(\w+)", "(\w+)", "(\w+)"\};', body).groups()
# Fields left zero by new_export: what zero means is in set_export's parsing.
export_expect = {
    "anonuid": export_dflt.get("anonuid"), "anongid": export_dflt.get("anongid"),
    "secure": {"1": "yes", "0": "no"}.get(export_dflt.get("secure", "0")),
    "auth_none": {"1": "yes", "0": "no"}.get(export_dflt.get("auth_none", "0")),
    "squash": squash_words[int(export_dflt.get("squash", "0"))],
    "access": "rw" if export_dflt.get("rw", "0") != "0" else "ro",
}
type_word = {"T_NAME": "name", "T_PATH": "path", "T_PWHASH": "password hash",
             "T_TEXT": "text", "T_WINDOW": "time windows",
             "T_UINT": "integer", "T_SIZE": "size", "T_RATE": "rate",
             "T_DUR": "duration", "T_BOOL": "boolean", "T_LEVEL": "log level",
             "T_FRAC": "fraction", "T_OPTADDR": "address", "T_PATHS": "list of paths",
             "T_ADDRS": "list of addresses", "T_HEXES": "list of hex secrets"}

doc_sects = {}
for head, sbody in md_sections(cfg_md, 3).items():
    hm = re.match(r"\[([a-z]+(?: NAME)?)\]", head)
    if hm:
        doc_sects[hm.group(1)] = sbody
n = 0
for s in sections + ["export NAME"]:
    n += 1
    if s not in doc_sects:
        fail("config section [%s] (daemon/config.c) has no '### [%s]' in docs/config.md"
             % (s, s))
for s in doc_sects:
    if s not in sections + ["export NAME"]:
        fail("config section [%s] of docs/config.md is not in daemon/config.c" % s)
doc_keys = {}
for s, sbody in doc_sects.items():
    for t in md_tables(sbody):
        for row in t:
            if "key" not in row:
                continue
            for k in ticks(row["key"]):
                doc_keys[(s, k)] = row
for (s, k), ck in code_keys.items():
    n += 1
    row = doc_keys.get((s, k))
    if row is None:
        fail("config key [%s] %s (daemon/config.c) is missing from docs/config.md" % (s, k))
        continue
    dd = row.get("default", "")
    want = ck["default"]
    if want == "":
        good = dd in ('`""`', "(none)", "")
    else:
        good = ticks(dd)[:1] == [want]
    if not good:
        fail("config key [%s] %s: default is %r in daemon/config.c, %r in docs/config.md"
             % (s, k, want or '""', dd))
    sig = row.get("sighup", "").strip()
    if sig and sig != ("restart" if ck["restart"] else "yes"):
        fail("config key [%s] %s: daemon/config.c says %s on SIGHUP, docs/config.md says %r"
             % (s, k, "restart" if ck["restart"] else "reloadable (yes)", sig))
    if "sighup" not in row:
        fail("config key [%s] %s: docs/config.md's table has no SIGHUP column" % (s, k))
    tw = type_word[ck["type"]]
    if not row.get("type", "").startswith(tw):
        fail("config key [%s] %s: type is %s in daemon/config.c, docs/config.md says %r"
             % (s, k, tw, row.get("type", "")))
    # The range, where the doc gives one as "LO–HI" (integers, sizes, durations).
    rm = re.search(r"(\d[^–,;]*?)\s*–\s*(\d+(?: ?(?:days?|B|[KMGTsmh]))?)(?![\w.])",
                   row.get("range", ""))
    if rm and ck["type"] in ("T_UINT", "T_SIZE", "T_DUR") and ck["min"] is not None:
        dur = ck["type"] == "T_DUR"
        dlo, dhi = doc_quantity(rm.group(1), dur), doc_quantity(rm.group(2), dur)
        nrange += 1
        if (dlo, dhi) != (ck["min"], ck["max"]):
            fail("config key [%s] %s: range is %d..%d in daemon/config.c, docs/config.md "
                 "says %r" % (s, k, ck["min"], ck["max"], rm.group(0)))
    if ck["pow2"] and "power of two" not in row.get("range", ""):
        fail("config key [%s] %s must be a power of two (daemon/config.c K_POW2); "
             "docs/config.md's range does not say so" % (s, k))
for k in export_keys:
    n += 1
    row = doc_keys.get(("export NAME", k))
    if row is None:
        fail("config key [export NAME] %s (daemon/config.c set_export) is missing from "
             "docs/config.md" % k)
        continue
    want = export_expect.get(k)
    if want is not None and ticks(row.get("default", ""))[:1] != [want]:
        fail("config key [export NAME] %s: default is %r in daemon/config.c, %r in "
             "docs/config.md" % (k, want, row.get("default", "")))
for (s, k) in doc_keys:
    if s == "export NAME":
        if k not in export_keys:
            fail("config key [export NAME] %s of docs/config.md is not taken by "
                 "daemon/config.c set_export" % k)
    elif (s, k) not in code_keys:
        fail("config key [%s] %s of docs/config.md is not in daemon/config.c's key table"
             % (s, k))
ok("config sections and keys (daemon/config.c vs docs/config.md), %d ranges" % nrange, n)

# ---------------------------------------------------------------- API routes
api_c = strip_comments(rd("daemon/api.c"))
web_c = strip_comments(rd("daemon/web.c"))
web_auth_c = strip_comments(rd("daemon/web_auth.c"))


def func(text, name):
    i = re.search(r"\n[^\n]*\b%s\([^;{]*\{" % re.escape(name), text)
    if not i:
        raise SystemExit("FAIL - test-docs.sh: function %s not found" % name)
    rest = text[i.start():]
    return rest[:rest.index("\n}\n")]


URL = r'"(/api/[^"]*)"'
routes = set()   # (method, path)
placed = set()   # literals the rules below account for
# daemon/api.c's route table: {R_GET|R_POST|R_ANY, flags, "PATH", handler}.
table = re.search(r"\broutes\[\] = \{(.*?)\n\};", api_c, re.S)
if not table:
    raise SystemExit("FAIL - test-docs.sh: the route table of daemon/api.c not found")
for m, u in re.findall(r'\{R_(GET|POST|ANY), [^,]+, "(/api/[^"]*)"', table.group(1)):
    placed.add(u)
    if m == "ANY":
        continue  # the handler tells the methods apart (the LUNs, below)
    if u.endswith("/"):  # a prefix: post_disk_op's actions follow it
        for op in re.findall(r'!strcmp\(op, "([a-z-]+)"\)', func(api_c, "post_disk_op")):
            routes.add((m, u + op))
    else:
        routes.add((m, u))
# LUNs (daemon/api_lun.c, the table's R_ANY routes): the routes its header comment
# lists, one "METHOD /api/v1/luns[/NAME]" a line.
lun_c = rd("daemon/api_lun.c")
for m, u in re.findall(r"\n \*\s+(GET|POST|DELETE)\s+(/api/v1/luns(?:/NAME)?)\s", lun_c):
    routes.add((m, u))
placed.update({"/api/v1/luns", "/api/v1/luns/"})
# The dashboard listener (daemon/web.c handle_web): login is POST (gate() refuses
# other methods), session is read with its cookie (GET), the rest sit in the
# `else if (post)` branch.
hw = func(web_c, "handle_web")
for u in re.findall(URL, hw):
    if u == "/api/":
        continue  # the prefix that tells the API from the static files
    if u == "/api/v1/session":
        routes.add(("GET", u))
    elif u == "/api/v1/login" or ('"%s"' % u) in hw[hw.index("} else if (post) {"):]:
        routes.add(("POST", u))
    else:
        continue
    placed.add(u)
# Every /api/ literal of the daemon's HTTP code must be one the rules above place.
for fname, text in (("daemon/api.c", api_c), ("daemon/web.c", web_c),
                    ("daemon/web_auth.c", web_auth_c)):
    for u in set(re.findall(URL, text)):
        if u not in placed and u != "/api/":
            fail("route %s in %s: tests/test-docs.sh cannot tell its method; "
                 "teach it" % (u, fname))
api_md = rd("docs/api.md")
doc_routes = set()
for mm in re.finditer(r"`(GET|POST|DELETE) (/api/[^`\s?]*)[^`]*`", api_md):
    if "..." not in mm.group(2):
        doc_routes.add((mm.group(1), mm.group(2)))
acts = md_sections(api_md, 2).get("Actions (POST)", "")
for t in md_tables(acts):
    for row in t:
        for u in ticks(row.get("endpoint", "")):
            doc_routes.add(("POST", u))
n = 0
for r in sorted(routes):
    n += 1
    if r not in doc_routes:
        fail("API route %s %s (daemon/api.c, daemon/web.c) is missing from docs/api.md" % r)
for r in sorted(doc_routes - routes):
    fail("API route %s %s of docs/api.md is not served by daemon/api.c or daemon/web.c" % r)
ok("API routes (daemon/api.c, daemon/web.c vs docs/api.md)", n)

# ---------------------------------------------------------------- wire messages
wire_h = rd("proto/wire.h")
wire_c = strip_comments(rd("proto/wire.c"))
defs = {}
for dm in re.finditer(r"^#define (WIRE_\w+) (\(?[0-9][^/\n]*?)\s*(?:/\*.*)?$", wire_h, re.M):
    v = re.sub(r"(\d+)u\b", r"\1", dm.group(2))
    defs[dm.group(1)] = v


def ev(expr):
    e = re.sub(r"(\d+)u\b", r"\1", expr)
    for _ in range(5):
        e = re.sub(r"\bWIRE_\w+\b", lambda x: "(%s)" % defs.get(x.group(0), x.group(0)), e)
    return int(eval(e, {"__builtins__": {}}))


enum = re.search(r"enum wire_type \{(.*?)\};", wire_h, re.S).group(1)
types = {}
for em in re.finditer(r"WIRE_(\w+)\s*=\s*(0x[0-9a-fA-F]+),?[ \t]*(?:/\*\s*(S->C|C->S|both)?)?",
                      enum):
    types[em.group(1)] = {"code": int(em.group(2), 16), "comment_dir": em.group(3)}
tinfo = wire_c[wire_c.index("TYPES[256]"):]
tinfo = tinfo[:tinfo.index("\n};")]
for tm in re.finditer(r"\[WIRE_(\w+)\]\s*=\s*\{", tinfo):
    a, _ = c_args(tinfo, tm.end() - 1)
    if tm.group(1) not in types:
        fail("proto/wire.c's TYPES[] has WIRE_%s, not a wire_type of proto/wire.h"
             % tm.group(1))
        continue
    types[tm.group(1)].update(name=c_string(a[0]), dir=a[1], bulk=a[2] == "1",
                              min=ev(a[3]), max=ev(a[4]))
proto_md = rd("docs/protocol.md")
msec = md_sections(proto_md, 2).get("Message types", "")
doc_types = {}
for t in md_tables(msec):
    for row in t:
        if "type" in row and "name" in row:
            doc_types[row["name"]] = row
heads = [h for lvl in (3,) for h in md_sections(proto_md, lvl)]
sender = {"WIRE_DIR_S2C": "server", "WIRE_DIR_C2S": "client", "WIRE_DIR_BOTH": "both"}
cdir = {"S->C": "WIRE_DIR_S2C", "C->S": "WIRE_DIR_C2S", "both": "WIRE_DIR_BOTH"}
limit = ev("WIRE_MAX_PAYLOAD_LIMIT")


def size_text(v):
    if v % (1 << 20) == 0:
        return "%d MiB" % (v >> 20)
    return str(v)


n = 0
for name, ti in sorted(types.items(), key=lambda x: x[1]["code"]):
    n += 1
    if "name" not in ti:
        fail("wire type WIRE_%s (proto/wire.h) has no entry in proto/wire.c's TYPES[]" % name)
        continue
    if ti["name"] != name:
        fail("wire type WIRE_%s is named %r in proto/wire.c" % (name, ti["name"]))
    if ti["comment_dir"] and cdir[ti["comment_dir"]] != ti["dir"]:
        fail("wire type WIRE_%s: proto/wire.h's comment says %s, proto/wire.c says %s"
             % (name, ti["comment_dir"], ti["dir"]))
    row = doc_types.get(name)
    if row is None:
        fail("wire message %s (0x%02x, proto/wire.h) is missing from docs/protocol.md's "
             "message table" % (name, ti["code"]))
        continue
    if row["type"] != "0x%02x" % ti["code"]:
        fail("wire message %s: code 0x%02x in proto/wire.h, %s in docs/protocol.md"
             % (name, ti["code"], row["type"]))
    if row.get("sender") != sender[ti["dir"]]:
        fail("wire message %s: sender %s in proto/wire.c, %r in docs/protocol.md"
             % (name, sender[ti["dir"]], row.get("sender")))
    lo = str(ti["min"])
    if ti["bulk"] and ti["max"] >= limit:
        hi = "max_payload"
    elif ti["bulk"]:
        hi = "min(%s, max_payload)" % size_text(ti["max"])
    else:
        hi = str(ti["max"])
    want = lo if lo == hi else "%s – %s" % (lo, hi)
    if row.get("payload bytes") != want:
        fail("wire message %s: payload %s bytes by proto/wire.c, docs/protocol.md says %r"
             % (name, want, row.get("payload bytes")))
    if not any(re.search(r"(^|[ ,])%s([ ,]|$)" % name, h) for h in heads):
        fail("wire message %s has no '### %s' section in docs/protocol.md" % (name, name))
for name in doc_types:
    if name not in types:
        fail("wire message %s of docs/protocol.md is not a wire_type of proto/wire.h" % name)
ok("wire message types (proto/wire.h, proto/wire.c vs docs/protocol.md)", n)
codes = {cm.group(1): int(cm.group(2)) for cm in re.finditer(
    r"WIRE_E_(\w+) = (\d+)", re.search(r"enum wire_code \{(.*?)\};", wire_h, re.S).group(1))}
doc_codes = {}
for t in md_tables(md_sections(proto_md, 3).get("Codes on the wire", "")):
    for row in t:
        if "code" in row and "name" in row:
            doc_codes["E" + row["name"][1:] if row["name"].startswith("E") else row["name"]] = row
n = 0
for name, v in sorted(codes.items(), key=lambda x: x[1]):
    n += 1
    row = doc_codes.get("E" + name)
    if row is None:
        fail("wire error code E%s (%d, proto/wire.h) is missing from docs/protocol.md's "
             "'Codes on the wire'" % (name, v))
    elif row["code"] != str(v):
        fail("wire error code E%s: %d in proto/wire.h, %s in docs/protocol.md"
             % (name, v, row["code"]))
for name in doc_codes:
    if name[1:] not in codes:
        fail("wire error code %s of docs/protocol.md is not in proto/wire.h's enum wire_code"
             % name)
ok("wire error codes (proto/wire.h vs docs/protocol.md)", n)

# ---------------------------------------------------------------- bkstorctl
cli_c = strip_comments(rd("cli/bkstorctl.c"))
ctab = cli_c[cli_c.index("commands[] = {"):]
ctab = ctab[:ctab.index("\n};")]
cmds = []
for cm in re.finditer(r"\n\t\{", ctab):
    a, _ = c_args(ctab, cm.end() - 1)
    cmds.append((c_string(a[0]) + (" " + c_string(a[1]) if c_string(a[1]) else ""),
                 c_string(a[2])))
with open(help_path, encoding="utf-8") as f:
    help_text = f.read()
cli_md = rd("docs/cli.md")
groups = {}
for c, _ in cmds:
    g = c.split()
    groups.setdefault(g[0], set()).update(g[1:])
n = 0
for c, args in cmds:
    n += 1
    syn = ("bkstorctl %s %s" % (c, args)).rstrip()
    if help_text and ("  " + syn + "\n") not in help_text:
        fail("command 'bkstorctl %s' (cli/bkstorctl.c) is missing from bkstorctl --help" % c)
    if not re.search(r"`%s[ `]" % re.escape("bkstorctl " + c), cli_md):
        fail("command 'bkstorctl %s' (cli/bkstorctl.c) is missing from docs/cli.md" % c)
if not help_text:
    print("note - bkstorctl not built: --help not compared")
# Every `bkstorctl WORD [VERB]` the docs name must be a command. Looked at: inline
# code, and lines of fenced code blocks.
docs = ["README.md"] + ["docs/" + f for f in sorted(os.listdir(os.path.join(src, "docs")))
                        if f.endswith(".md")]
for d in docs:
    text = rd(d)
    fence = r"```[a-z]*\n(.*?)```"
    spans = re.findall(r"`([^`\n]+)`", re.sub(fence, "", text, flags=re.S))
    # In a code block, only where a shell command starts (not in a tree's prose).
    spans += [l.strip().lstrip("$ ") for blk in re.findall(fence, text, re.S)
              for l in blk.splitlines()]
    for sp in spans:
        for mm in re.finditer(r"(?:^|[;|&(]\s*)bkstorctl ([a-z][a-z-]*)(?: ([a-z][a-z|-]*))?",
                              sp):
            g, v = mm.group(1), mm.group(2)
            if g not in groups:
                fail("%s names 'bkstorctl %s', which is not a command of cli/bkstorctl.c"
                     % (d, g))
            elif v and groups[g]:
                for alt in v.split("|"):
                    if alt not in groups[g]:
                        fail("%s names 'bkstorctl %s %s', which is not a command of "
                             "cli/bkstorctl.c" % (d, g, alt))
ok("bkstorctl commands (cli/bkstorctl.c vs --help, docs/cli.md, docs)", n)

# ---------------------------------------------------------------- named files
# Every source file and test the docs point a reader to exists.
n = 0
tops = "bench|tests|daemon|dedup|storage|proto|cli|common|raid|fs|fuzz|contrib|web|docs"
for d in docs:
    text = rd(d)
    for f in sorted(set(re.findall(r"\b((?:%s)/[\w./-]*\w)" % tops, text))):
        if "." not in os.path.basename(f) and not os.path.isdir(os.path.join(src, f)):
            continue  # a directory or a program built there (web/embed, tests/torture)
        n += 1
        if not os.path.exists(os.path.join(src, f)):
            fail("%s names %s, which is not in the source tree" % (d, f))
    for t in sorted(set(re.findall(r"`(test-[a-z0-9-]+)`", text))):
        n += 1
        if not any(os.path.exists(os.path.join(src, "tests", t + e)) for e in (".c", ".sh")):
            fail("%s names the test %s; there is no tests/%s.c or .sh" % (d, t, t))
ok("files and tests the docs name (README.md, docs/*.md)", n)

if fails:
    print("%d check(s) failed" % fails)
    sys.exit(1)
print("all checks passed")
PY
