# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A state store shipped in a collection, found by FQCN: blockstore_test.stores.redis_state.

What a site ships without pip: the module sets STORE to its store class (docs/stores.md). This
one builds on the Redis example store, with an identity of its own so the tests can tell them apart.
"""

from __future__ import annotations

from blockstore_store_redis import RedisStore


class CollectionRedisStore(RedisStore):
    @property
    def identity(self) -> str:
        return f"collection-shipped {super().identity}"


STORE = CollectionRedisStore
