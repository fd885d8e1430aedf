#!/usr/bin/env python3
"""Checks the emulator's enum numbering against the official Rust crates.

Parses `impl From<&str>` / `impl From<i32>` of every enum in every google-cloud-* crate's
`model.rs` found in ~/.cargo/registry and prints each discovery enum value whose
proto number differs from its position in the discovery `enum` list. Those must be listed in
NON_CONTIGUOUS_ENUMS in crates/gcp-emulator/src/discovery.rs (today: LaunchStage, CommonReason).

    check_enum_numbers.py crates/gcp-emulator/discovery/run.v2.json crates/gcp-emulator/discovery/cloudtasks.v2.json
"""
import glob
import json
import os
import re
import sys
src=glob.glob(os.path.expanduser("~/.cargo/registry/src/*/"))[0]
files=sorted(glob.glob(src+"google-cloud-*/src/model.rs")+glob.glob(src+"google-cloud-*/src/model/*.rs"))
enums={}  # frozenset(names)->{name:num}
for f in files:
    t=open(f).read()
    for m in re.finditer(r'impl std::convert::From<&str> for (\w+) \{\s*fn from\(value: &str\) -> Self \{\s*use std::string::ToString;\s*match value \{(.*?)_ =>', t, re.S):
        name=m.group(1); body=m.group(2)
        str2var=dict(re.findall(r'"(\w+)" => Self::(\w+)',body))
        mi=re.search(r'impl std::convert::From<i32> for '+name+r' \{\s*fn from\(value: i32\) -> Self \{\s*match value \{(.*?)_ =>', t, re.S)
        if not mi: continue
        var2num={v:int(n) for n,v in re.findall(r'(-?\d+) => Self::(\w+)',mi.group(1))}
        mp={s:var2num[v] for s,v in str2var.items() if v in var2num}
        enums.setdefault(frozenset(mp),[]).append((name,mp))
bad=0
for df in sys.argv[1:]:
    d=json.load(open(df))
    seen=set()
    for sn,s in d["schemas"].items():
        for pn,p in s.get("properties",{}).items():
            e=p.get("enum") or p.get("items",{}).get("enum")
            if not e: continue
            key=frozenset(e)
            cands=[v[0][1] for k,v in enums.items() if k<=key and len(k)>=2 and list(k)[0] in key and (e[0] in k)]
            cands.sort(key=lambda m:-len(m))
            if not cands:
                print("NO RUST ENUM", df, sn, pn, e[:3]); continue
            mp=cands[0]
            if len(mp)!=len(e): print("PARTIAL", sn, pn, "rust lacks", [n for n in e if n not in mp])
            for i,n in enumerate(e):
                if n in mp and mp[n]!=i and (sn,pn,n) not in seen:
                    seen.add((sn,pn,n))
                    print("EXCEPTION", df, sn+"."+pn, n, "discovery index",i,"proto",mp[n]); bad+=1
print("exceptions",bad)
