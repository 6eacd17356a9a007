"""``optout token create|list|revoke``: the API's bearer tokens, managed from the command line.

The secret is printed once, by ``create``, and never again: the table holds its sha256 only.
"""

from __future__ import annotations

import sys

import orjson

from worker.api.tokens import new_token, secret_hash, valid_id
from worker.errors import ConfigError
from worker.events.fields import field_problem

#: A token's name says what it is for ("billing service", "support desk"): short text.
MAX_NAME_CHARS = 100


async def run_token(
    database_url: str, action: str, token_id: str | None, account: str | None, name: str | None
) -> int:
    from worker.store.postgres import Store
    from worker.store.tokens import TokenStore

    if action == "create":
        account, name = _create_args(token_id, account, name)
    elif action == "revoke":
        if token_id is None or not valid_id(token_id):
            raise ConfigError(
                "optout token revoke ID: ID is the 16 hex digits after opt_ (optout token list)"
            )
    elif token_id is not None:
        raise ConfigError(f"optout token list takes no ID (got {token_id[:20]!r}); --account A narrows it")
    out = sys.stdout.buffer
    async with await Store.connect(database_url, min_size=1, max_size=1) as store:
        tokens = TokenStore(store)
        if action == "create":
            assert account is not None
            assert name is not None
            token = new_token()
            created = await tokens.create(token.token_id, account, secret_hash(token.secret), name)
            shown = {"token_id": token.token_id, "account": account, "name": name, "created_at": created}
            out.write(orjson.dumps(shown | {"token": str(token)}) + b"\n")
            print("the token is shown once, now: keep it in your secret store", file=sys.stderr)
        elif action == "list":
            for row in await tokens.list(account):
                out.write(orjson.dumps(row) + b"\n")
        else:
            assert token_id is not None
            revoked = await tokens.revoke(token_id)
            if revoked is None:
                raise ConfigError(f"no API token has the id {token_id} (optout token list)")
            out.write(orjson.dumps(revoked) + b"\n")
    return 0


def _create_args(token_id: str | None, account: str | None, name: str | None) -> tuple[str, str]:
    if token_id is not None:
        raise ConfigError("optout token create takes no ID: --account A --name N")
    if not account or not account.strip():
        raise ConfigError("optout token create needs --account A (the account the token acts for)")
    if not name or not name.strip():
        raise ConfigError("optout token create needs --name N (what the token is for)")
    account = account.strip()  # as block and the API's changes take it (worker.classify.manual)
    problem = field_problem(account)
    if problem is not None:
        raise ConfigError(f"--account {problem}")
    if len(name) > MAX_NAME_CHARS or field_problem(name) is not None:
        raise ConfigError(f"--name: at most {MAX_NAME_CHARS} characters, no control character")
    return account, name.strip()
