"""HTTP checks of a running `mae serve` (tests/serve_http.sh starts it): python3 standard library only.

    serve_client.py URL IMG_A IMG_B IMG_BIG CLASSIFY_JSON

IMG_A/IMG_B: 28-px PNGs of the two classes; IMG_BIG: a larger JPEG; CLASSIFY_JSON: `mae classify --json --topk 2`
of IMG_A. Prints ok/FAIL lines; exits 1 on any failure.
"""
import base64
import http.client
import json
import struct
import sys
import threading
import urllib.parse
import zlib

url, img_a, img_b, img_big, classify_json = sys.argv[1:6]
u = urllib.parse.urlparse(url)
A, B, BIG = (open(p, "rb").read() for p in (img_a, img_b, img_big))
fails = 0


def check(name, cond, detail=""):
    global fails
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))
    fails += not cond


def request(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type", ""), data


def multipart(fields, boundary="maeTESTboundary"):
    """fields: [(name, value bytes|str[, filename])] → (body, content type)"""
    out = b""
    for field in fields:
        name, value, filename = (tuple(field) + (None,))[:3]
        if isinstance(value, str):
            value = value.encode()
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        ctype = "Content-Type: application/octet-stream\r\n" if filename else ""
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n{ctype}\r\n".encode() + value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def post(path, fields):
    body, ctype = multipart(fields)
    return request("POST", path, body, {"Content-Type": ctype})


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    return struct.unpack(">II", data[16:24])


def expect_error(name, status, ctype, data, want_status, want_text):
    try:
        msg = json.loads(data)
        good = (status == want_status and ctype.startswith("application/json") and want_text in msg["error"]
                and msg["status"] == status)
    except (ValueError, KeyError):
        good, msg = False, data[:200]
    check(f"{name} → {want_status} JSON error", good, f"{status} {ctype} {msg}")


# ---------------------------------------------------------------------------------------------- endpoints
s, t, d = request("GET", "/health")
check("GET /health", s == 200 and json.loads(d) == {"status": "ok"}, f"{s} {d[:100]}")

s, t, d = request("GET", "/info")
info = json.loads(d)
names = info["classifier"]["class_names"] if s == 200 else []
check("GET /info", s == 200 and info["can"] == {"reconstruct": True, "embed": True, "classify": True}
      and info["model"]["config"]["img_size"] == 28 and info["model"]["kind"] == "mae"
      and names == ["blob_bottom_right", "blob_top_left"] and info["limits"]["max_body_bytes"] == 1 << 20,
      f"{s} {d[:300]}")

s, t, d = request("GET", "/")
page = d.decode()
external = [w for w in ("http://", "https://", "//fonts", "src=\"/", "@import") if w in page]
check("GET / (self-contained page)", s == 200 and t.startswith("text/html") and "<script>" in page and not external,
      f"{s} {t} external references: {external}")

s, t, png1 = post("/reconstruct", [("image", A, "a.png"), ("mask_ratio", "0.5"), ("seed", "3")])
check("POST /reconstruct → four-panel PNG 902×224", s == 200 and t == "image/png" and png_size(png1) == (902, 224),
      f"{s} {t} {png1[:80]}")

s, t, d = post("/reconstruct", [("image", A, "a.png"), ("mask_ratio", "0.5"), ("seed", "3"), ("format", "json")])
j = json.loads(d) if s == 200 else {}
check("POST /reconstruct format=json: PNG, mask, per-patch loss",
      s == 200 and base64.b64decode(j["png_base64"]) == png1 and len(j["mask"]) == 49 and sum(j["mask"]) == 25
      and len(j["patch_loss"]) == 49 and j["grid"] == 7
      and abs(j["loss"] - sum(l for l, m in zip(j["patch_loss"], j["mask"]) if m) / 25) < 1e-4,
      f"{s} {d[:200]}")

s, t, d = post("/reconstruct", [("image", A, "a.png"), ("mask_ratio", "0.5"), ("seed", "4"), ("format", "json")])
check("another seed, another mask", s == 200 and json.loads(d)["mask"] != j.get("mask"), f"{s} {d[:100]}")

s, t, d = request("POST", "/reconstruct?mask_ratio=0.9&seed=1", BIG, {"Content-Type": "image/jpeg"})
check("POST /reconstruct raw JPEG body, query parameters", s == 200 and png_size(d) == (902, 224), f"{s} {d[:100]}")

s, t, d = post("/embed", [("image", A, "a.png"), ("image", BIG, "big.jpg"), ("pool", "mean")])
e = json.loads(d) if s == 200 else {}
check("POST /embed two images, pool=mean", s == 200 and e["dim"] == 128 and len(e["features"]) == 2
      and all(len(f) == 128 for f in e["features"]) and e["pool"] == "mean", f"{s} {d[:200]}")
s, t, d = post("/embed", [("image", A, "a.png")])
cls_a = json.loads(d)["features"][0] if s == 200 else None
check("POST /embed, cls by default", s == 200 and json.loads(d)["pool"] == "cls", f"{s} {d[:200]}")

s, t, d = post("/classify", [("image", A, "a.png"), ("topk", "5")])  # more than the 2 classes: both
c = json.loads(d)["results"][0] if s == 200 else []
cli = json.load(open(classify_json))[0]["top"]
check("POST /classify: top 2, named, best first, as `mae classify`",
      s == 200 and [x["name"] for x in c] == [x["name"] for x in cli] and c[0]["prob"] >= c[1]["prob"]
      and all(abs(x["prob"] - y["prob"]) < 1e-5 for x, y in zip(c, cli)) and {x["name"] for x in c} == set(names),
      f"{s} {d[:200]} vs {cli}")

# Concurrent requests (batched into shared forwards) answer as single ones.
results = {}


def worker(k):
    img = (A, B)[k % 2]
    s, _, d = post("/embed", [("image", img, "x.png")])
    results[k] = (s, json.loads(d)["features"][0] if s == 200 else d)


threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
for th in threads:
    th.start()
for th in threads:
    th.join()
s, t, d = post("/embed", [("image", B, "b.png")])
cls_b = json.loads(d)["features"][0]
same = all(r[0] == 200 and max(abs(x - y) for x, y in zip(r[1], (cls_a, cls_b)[k % 2])) < 1e-5
           for k, r in results.items())
check("12 concurrent /embed requests give the single-request features", same and len(results) == 12,
      str({k: r[0] for k, r in results.items()}))

# ----------------------------------------------------------------------------------------------- bad requests
body, ctype = multipart([("image", A, "a.png"), ("mask_ratio", "0.5")])
cut = body[: len(body) // 2]
expect_error("truncated multipart body", *request("POST", "/reconstruct", cut, {"Content-Type": ctype}), 400,
             "malformed")
big_body, ctype = multipart([("image", b"\0" * (2 << 20), "huge.png")])
expect_error("body over the 1 MiB limit", *request("POST", "/embed", big_body, {"Content-Type": ctype}), 413,
             "over the limit")
expect_error("not an image", *post("/embed", [("image", b"hello, this is text", "t.png")]), 400,
             "not a JPEG or PNG")


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
expect_error("a 30000×30000 PNG header", *post("/embed", [("image", bomb, "bomb.png")]), 400,
             "30000×30000 pixels is more than the limit")
expect_error("two 300×200 images over the request's 100000 pixels",
             *post("/embed", [("image", BIG, "1.jpg"), ("image", BIG, "2.jpg")]), 400,
             "#2 of the request: 300×200 pixels is more than the limit of 40000")
expect_error("unknown field", *post("/reconstruct", [("image", A, "a.png"), ("colour", "red")]), 400,
             "unknown field 'colour'")
expect_error("unknown query parameter", *post("/embed?batch=3", [("image", A, "a.png")]), 400, "unknown field 'batch'")
expect_error("field given twice", *post("/reconstruct", [("image", A, "a"), ("seed", "1"), ("seed", "2")]), 400,
             "given twice")
expect_error("mask_ratio 1.5", *post("/reconstruct", [("image", A, "a.png"), ("mask_ratio", "1.5")]), 400,
             "mask_ratio must be in [0, 1)")
expect_error("mask_ratio not a number", *post("/reconstruct", [("image", A, "a.png"), ("mask_ratio", "lots")]), 400,
             "not a number")
expect_error("seed -1", *post("/reconstruct", [("image", A, "a.png"), ("seed", "-1")]), 400, "not an integer")
expect_error("topk 0", *post("/classify", [("image", A, "a.png"), ("topk", "0")]), 400, "not an integer in [1, ")
expect_error("pool max", *post("/embed", [("image", A, "a.png"), ("pool", "max")]), 400, "not one of cls, mean")
expect_error("two images to /reconstruct", *post("/reconstruct", [("image", A, "a"), ("image", B, "b")]), 413,
             "more than the limit of 1")
expect_error("five images to /embed (limit 4)", *post("/embed", [("image", A, str(k)) for k in range(5)]), 413,
             "more than the limit of 4")
expect_error("no image", *post("/embed", [("pool", "cls")]), 400, "no image")
expect_error("JSON body", *request("POST", "/embed", b'{"image": 1}', {"Content-Type": "application/json"}), 415,
             "multipart/form-data")
expect_error("GET /reconstruct", *request("GET", "/reconstruct"), 405, "use POST")
expect_error("POST /health", *request("POST", "/health", b""), 405, "use GET")
expect_error("DELETE /embed", *request("DELETE", "/embed"), 405, "method not allowed")
expect_error("GET /nothing", *request("GET", "/nothing"), 404, "no such endpoint")

s, t, d = request("GET", "/health")
s2, t2, d2 = post("/embed", [("image", A, "a.png")])
check("alive after the bad requests", s == 200 and s2 == 200 and json.loads(d2)["features"][0] == cls_a,
      f"{s} {s2} {d2[:100]}")
sys.exit(1 if fails else 0)
