#!/usr/bin/env python3
"""ES256 test keys, a JWKS and tokens for the gateway prototype (joserfc).

  keys.py init DIR              key-a.json, key-b.json (private JWKs) and jwks.json (public, key A only)
  keys.py jwks DIR a[,b]        rewrite DIR/jwks.json with the public keys listed
  keys.py token DIR KEY [k=v..] print an ES256 token signed with key KEY; claims default to
                                iss=http://127.0.0.1:18001 aud=platform-gateway sub=demo client_id=demo
                                scope="payments:read" exp=now+300; k=v overrides (exp=-60 → expired,
                                aud=a,b → list, kid=x → header kid)
"""
import json, sys, time, pathlib
from joserfc import jwt
from joserfc.jwk import ECKey

def load(d, k):
    return ECKey.import_key(json.loads((d / f"key-{k}.json").read_text()))

def main():
    cmd, d = sys.argv[1], pathlib.Path(sys.argv[2])
    if cmd == "init":
        d.mkdir(parents=True, exist_ok=True)
        for k in "ab":
            key = ECKey.generate_key("P-256", parameters={"kid": f"key-{k}", "alg": "ES256", "use": "sig"})
            (d / f"key-{k}.json").write_text(json.dumps(key.as_dict(private=True)))
        sys.argv[3:] = ["a"]; cmd = "jwks"
    if cmd == "jwks":
        keys = [load(d, k).as_dict(private=False) for k in sys.argv[3].split(",") if k]
        (d / "jwks.json").write_text(json.dumps({"keys": keys}))
        return
    if cmd == "token":
        key = load(d, sys.argv[3])
        now = int(time.time())
        claims = {"iss": "http://127.0.0.1:18001", "aud": "platform-gateway", "sub": "demo",
                  "client_id": "demo", "scope": "payments:read", "iat": now, "exp": now + 300}
        header = {"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}
        for kv in sys.argv[4:]:
            k, v = kv.split("=", 1)
            if k == "kid": header["kid"] = v; continue
            if k == "exp": claims["exp"] = now + int(v); continue
            claims[k] = v.split(",") if k == "aud" and "," in v else v
        print(jwt.encode(header, claims, key))

main()
