"""Load on a running `mae serve`: N concurrent clients (threads, one keep-alive connection each) post one image to
an endpoint as fast as they can for T seconds. Prints one line: requests/s, latency p50/p99 (ms), errors.
Standard library only.

    serve_load.py URL ENDPOINT IMAGE --clients N --seconds T [--field k=v ...]
"""
import argparse
import http.client
import threading
import time
import urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("url")
ap.add_argument("endpoint")
ap.add_argument("image")
ap.add_argument("--clients", type=int, default=8)
ap.add_argument("--seconds", type=float, default=20)
ap.add_argument("--field", action="append", default=[], help="k=v, sent as multipart fields")
a = ap.parse_args()
u = urllib.parse.urlparse(a.url)
img = open(a.image, "rb").read()
boundary = "maeLOADboundary"
body = b""
for f in a.field:
    k, v = f.split("=", 1)
    body += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
body += (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x"\r\n'
         f"Content-Type: application/octet-stream\r\n\r\n").encode() + img + f"\r\n--{boundary}--\r\n".encode()
headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}

lat, errors, lock = [], [], threading.Lock()
stop_at = time.monotonic() + a.seconds


def client():
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    mine, errs = [], []
    while time.monotonic() < stop_at:
        t0 = time.monotonic()
        try:
            conn.request("POST", a.endpoint, body, headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                errs.append(r.status)
            elif r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        except Exception as e:  # a reset or timeout is an error of the run
            errs.append(type(e).__name__)
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        mine.append(time.monotonic() - t0)
    with lock:
        lat.extend(mine)
        errors.extend(errs)


t0 = time.monotonic()
threads = [threading.Thread(target=client) for _ in range(a.clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.monotonic() - t0
lat.sort()
q = lambda p: 1000 * lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
print(f"{a.endpoint:<12} clients {a.clients:>2}  {len(lat):>6} requests in {wall:5.1f} s  {len(lat) / wall:7.1f} req/s  "
      f"p50 {q(0.50):7.1f} ms  p99 {q(0.99):7.1f} ms  errors {len(errors)}"
      + (f" ({sorted(set(map(str, errors)))})" if errors else ""))
