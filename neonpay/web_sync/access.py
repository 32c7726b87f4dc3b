"""Who sent a request, and what it may do: the sync server's identification step.

A request is verified against every secret this server knows: its server-wide secrets
(``create_sync_app(webhook_secret=...)``, ``$NEONPAY_SYNC_SECRET``) and each configured
peer's own secret (``BotSyncConfig(webhook_secret=...)`` or ``webhook_secret_env``).

* Signed with the own secret of exactly one peer P: the request is P, whatever its
  ``X-NeonPay-Node`` says. It gets P's grant; claiming the node id of another configured
  peer is refused; a new node id is remembered (and logged) as P's.
* Signed with a secret several peers share (and no server-wide secret): the node header
  must name one of those peers, whose grant it gets; any other node is refused (403).
* Signed with a server-wide secret: the node header decides. A configured peer with a
  secret of its own cannot be claimed (403); a configured peer without one gets its
  grant; any other node gets the ``unknown_peers`` policy's grant.
* The node ids of a peer whose stored config is unreadable stay its own: no request may
  claim them (403) until the config is fixed.

Every refusal is :class:`~neonpay.errors.AccessDenied` (answered 403).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from neonpay.errors import AccessDenied, ConfigurationError, SignatureError
from neonpay.store.base import Store
from neonpay.sync.config import BotSyncConfig
from neonpay.sync.grants import (
    Grant,
    UnknownPeers,
    configured_peers,
    known_nodes,
    names_by_node,
)
from neonpay.web_sync.signing import Verified

__all__ = ["Identified", "identify"]

logger = logging.getLogger("neonpay.web_sync.server")

#: Verifies a request against candidate secrets (see :func:`neonpay.web_sync.signing.verify`).
Verifier = Callable[[Sequence[str]], Verified]


@dataclass(frozen=True)
class Identified:
    """A verified request: its grant, and the secret that signs the answer (None when
    the server runs without secrets)."""

    grant: Grant
    secret: str | None
    bound: bool = False
    """Whether the peer's own secret signed it (its node id is then remembered as the
    peer's once the request is admitted: :func:`~neonpay.sync.grants.note_inbound_node`)."""


@dataclass(frozen=True)
class _Peer:
    name: str
    config: BotSyncConfig
    secrets: tuple[str, ...]
    nodes: frozenset[str]

    @property
    def has_own_secret(self) -> bool:
        return bool(self.config.webhook_secret or self.config.webhook_secret_env)


def _load(store: Store) -> tuple[dict[str, _Peer], dict[str, str]]:
    """The peers configured here, and the node ids of those whose stored config is
    unreadable (node id -> peer name)."""
    configs = configured_peers(store)
    unreadable = [name for name in store.list_peers() if name not in configs]
    nodes = known_nodes(store, [*configs, *unreadable])
    peers: dict[str, _Peer] = {}
    for name, config in configs.items():
        try:
            secrets = config.secrets()
        except ConfigurationError as exc:
            # Its secret is configured but cannot be read here: nobody can speak for it.
            logger.warning("peer %r cannot be verified: %s", name, exc)
            secrets = ()
        peers[name] = _Peer(name, config, secrets, frozenset(nodes.get(name, ())))
    return peers, names_by_node({name: nodes.get(name, set()) for name in unreadable})


def identify(
    store: Store,
    node: str | None,
    server_secrets: Sequence[str],
    verify: Verifier | None,
    policy: UnknownPeers,
) -> Identified:
    """Verify a request and bind it to one requester (see the module's rules).

    ``verify`` is None when the server runs without secrets (``insecure=True``): the
    node header alone then decides.

    Raises:
        SignatureError: no known secret verifies the request.
        AccessDenied: the request claims a node it may not speak for, or its grant
            rules out any use of this node.
    """
    peers, reserved = _load(store)
    by_node = names_by_node({p.name: set(p.nodes) for p in peers.values()})
    claimed = peers.get(by_node[node]) if node and node in by_node else None
    secret: str | None = None
    owners: set[str | None] = set()
    if verify is not None:
        candidates = _candidates(peers, claimed, server_secrets)
        if not candidates:
            raise SignatureError("this server has no secret that could verify the request")
        secret = list(candidates)[verify(list(candidates)).secret_index]
        owners = candidates[secret]
    if node and node in reserved:  # (after the signature: never told to a stranger)
        raise AccessDenied(
            f"the request claims node {node!r} of peer {reserved[node]!r}, whose stored "
            "config here is unreadable: nobody may speak for it until its config is fixed"
        )
    own = {owner for owner in owners if owner is not None}
    if len(own) == 1 and None not in owners:
        peer = peers[own.pop()]
        if claimed is not None and claimed.name != peer.name:
            raise AccessDenied(
                f"the request was signed with the secret of peer {peer.name!r} but claims "
                f"node {node!r} of peer {claimed.name!r}: a request speaks only for the peer "
                "whose secret signed it"
            )
        grant = Grant.for_peer(peer.name, peer.config, node)
        grant.check_access()
        return Identified(grant, secret, bound=True)
    if own and None not in owners and (claimed is None or claimed.name not in own):
        # a secret that only peers hold (several share it): it speaks for one of them
        holders = ", ".join(map(repr, sorted(own)))
        raise AccessDenied(
            f"the request was signed with a secret that the peers {holders} "
            f"share here, but claims {'node ' + repr(node) if node else 'no node'}, none of "
            "theirs: it may speak only as one of them (give each peer a secret of its own)"
        )
    if claimed is not None:
        if claimed.has_own_secret and claimed.name not in own:
            raise AccessDenied(
                f"the request claims node {node!r} of peer {claimed.name!r}, which signs "
                "with a secret of its own here, but it was signed with another secret"
            )
        grant = Grant.for_peer(claimed.name, claimed.config, node)
    else:
        grant = Grant.for_unknown(node, policy)
    grant.check_access()
    return Identified(grant, secret)


def _candidates(
    peers: dict[str, _Peer], claimed: _Peer | None, server_secrets: Sequence[str]
) -> dict[str, set[str | None]]:
    """Every secret that may verify a request -> who holds it (a peer name, or None for
    the server-wide secrets). The claimed peer's secrets come first, so the usual
    request costs one MAC."""
    holders: dict[str, set[str | None]] = {}
    if claimed is not None:
        for secret in claimed.secrets:
            holders.setdefault(secret, set()).add(claimed.name)
    for secret in server_secrets:
        holders.setdefault(secret, set()).add(None)
    for peer in peers.values():
        for secret in peer.secrets:
            holders.setdefault(secret, set()).add(peer.name)
    return holders
