# Test helper: open a sealed CHAP password of a connection with the store's key, as only
# the key's owner can. Usage: unseal.py STATE_FILE CONNECTION_ID
import json
import sys

from cryptography.fernet import Fernet

PREFIX = "sealed:v1:"
state, connection_id = sys.argv[1:3]
with open(state + ".key", encoding="ascii") as handle:
    key = handle.read().strip()
with open(state, encoding="utf-8") as handle:
    record = json.load(handle)["records"][connection_id]
token = record["connection_info"]["data"]["auth_password"]
if not token.startswith(PREFIX):
    sys.exit(f"the password is not sealed in the state file: {token[:3]}...")
print(Fernet(key.encode()).decrypt(token[len(PREFIX):].encode()).decode())
