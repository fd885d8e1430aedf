#!/usr/bin/env python3
"""Reads what `[gateway.*]` and `[api_key.*]` made with Google's discovery-based
googleapiclient (apigateway v1 and apikeys v2 from its bundled discovery documents, anonymous
credentials) and prints one JSON document:

    {"gateways": {"<id>": {...gateway, "config": {...config with FULL view, "document": {...}},
                  "api": {...}}},
     "keys": {"<key id>": {...key, no keyString}}}

    readback_gateway.py --endpoint http://127.0.0.1:PORT --project p1 --region us-central1
"""

import argparse
import base64
import json
import sys

import googleapiclient.discovery
from googleapiclient.errors import HttpError
from google.auth.credentials import AnonymousCredentials


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True)
    args = parser.parse_args()
    options = {"api_endpoint": args.endpoint}
    credentials = AnonymousCredentials()
    gateway_api = googleapiclient.discovery.build(
        "apigateway", "v1", credentials=credentials, static_discovery=True, client_options=options)
    keys_api = googleapiclient.discovery.build(
        "apikeys", "v2", credentials=credentials, static_discovery=True, client_options=options)
    out = {"gateways": {}, "keys": {}}
    try:
        gateways = gateway_api.projects().locations().gateways().list(
            parent=f"projects/{args.project}/locations/{args.region}").execute().get("gateways", [])
        for gateway in gateways:
            config = gateway_api.projects().locations().apis().configs().get(
                name=gateway["apiConfig"], view="FULL").execute()
            for document in config.get("openapiDocuments", []):
                contents = document["document"].get("contents", "")
                document["document"]["parsed"] = json.loads(base64.b64decode(contents))
            api_name = gateway["apiConfig"].split("/configs/")[0]
            gateway["config"] = config
            gateway["api"] = gateway_api.projects().locations().apis().get(name=api_name).execute()
            gateway["configs"] = [c["name"] for c in gateway_api.projects().locations().apis().configs().list(
                parent=api_name).execute().get("apiConfigs", [])]
            out["gateways"][gateway["name"].rsplit("/", 1)[1]] = gateway
        keys = keys_api.projects().locations().keys().list(
            parent=f"projects/{args.project}/locations/global").execute().get("keys", [])
        for key in keys:
            out["keys"][key["name"].rsplit("/", 1)[1]] = key
    except HttpError as error:
        print(f"readback failed: {error}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
