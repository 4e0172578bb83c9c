"""Microsoft's Python Key Vault client against the devstack Key Vault emulator.

Usage: keyvault_client.py managed-identity|client-secret
Prints one JSON line of what it observed (digests, never secret values).
"""
import hashlib
import json
import os
import sys

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def main() -> None:
    mode = sys.argv[1]
    if mode == "managed-identity":
        credential = ManagedIdentityCredential()
    else:
        credential = ClientSecretCredential(
            os.environ["AZURE_TENANT_ID"],
            os.environ["AZURE_CLIENT_ID"],
            os.environ["AZURE_CLIENT_SECRET"],
            authority=os.environ["AZURE_AUTHORITY_HOST"],
            disable_instance_discovery=True,
        )
    client = SecretClient(
        vault_url=os.environ["KEY_VAULT_URL"],
        credential=credential,
        verify_challenge_resource=False,
    )
    out = {"seeded_sha256": digest(client.get_secret("third-party-api-key").value)}
    if mode == "client-secret":
        first = client.set_secret("python-made", "first-python-value", content_type="text/plain")
        client.set_secret("python-made", "second-python-value")
        out["latest"] = client.get_secret("python-made").value
        out["first_by_version"] = client.get_secret("python-made", first.properties.version).value
        out["versions"] = len(list(client.list_properties_of_secret_versions("python-made")))
        out["names"] = sorted(p.name for p in client.list_properties_of_secrets())
        client.update_secret_properties("python-made", enabled=False)
        try:
            client.get_secret("python-made")
            out["disabled"] = "readable"
        except HttpResponseError as error:
            out["disabled"] = f"{error.status_code} {error.error.code if error.error else ''}"
        poller = client.begin_delete_secret("python-made")
        out["deleted_recovery_id"] = poller.result().recovery_id is not None
        try:
            client.get_secret("python-made")
            out["after_delete"] = "readable"
        except ResourceNotFoundError:
            out["after_delete"] = "not found"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
