"""What a requesting peer may do on this node: its :class:`Grant`.

Our configuration of a peer decides what that peer may do to us:

============== ===================== ======================
our direction  the peer may read      the peer may write
============== ===================== ======================
PUSH           yes (we send to it)    no
PULL           no                     yes (we take from it)
BIDIRECTIONAL  yes                    yes
============== ===================== ======================

and only the kinds switched on for it (``sync_payment_stages``, ``sync_promo_codes``,
``sync_templates``, ``sync_settings``) may be read or written. A node that is not
configured here gets what the server's :class:`UnknownPeers` policy allows.

Who the requester is (which peer) is decided by the transport: the HTTP server binds a
request to the peer whose own secret signed it (:mod:`neonpay.web_sync.access`); the
in-process transport looks the node id up with :func:`known_nodes`.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from neonpay.errors import AccessDenied, ConfigurationError
from neonpay.store.base import KINDS, Store
from neonpay.sync.config import BotSyncConfig, SyncDirection, parse_choice

__all__ = [
    "Grant",
    "UnknownPeers",
    "configured_peers",
    "grant_by_node",
    "inbound_node",
    "inbound_record",
    "known_nodes",
    "names_by_node",
    "note_inbound_node",
    "parse_unknown_peers",
]

logger = logging.getLogger("neonpay.sync")

#: The meta entry holding the node id a configured peer last signed requests as.
_INBOUND_META = "peer_inbound:{name}"

#: The setting that switches each kind on for a peer.
_KIND_SETTINGS = {
    "payment_stage": "sync_payment_stages",
    "promo_code": "sync_promo_codes",
    "promo_usage": "sync_promo_codes",
    "template": "sync_templates",
    "setting": "sync_settings",
}


class UnknownPeers(enum.Enum):
    """What a node that is not configured here may do (a server-wide policy).

    ``READ_WRITE`` (the default, as the spec shows it): read and write every kind.
    ``READ``: read every kind, write nothing. ``REFUSE``: nothing at all.
    """

    READ_WRITE = "read-write"
    READ = "read"
    REFUSE = "refuse"


def parse_unknown_peers(value: Any) -> UnknownPeers:
    """``value`` (a member, or its value such as ``"read"``) as :class:`UnknownPeers`.

    Raises:
        ConfigurationError: not one of read-write, read, refuse.
    """
    if isinstance(value, str):
        value = value.strip().lower().replace("_", "-")
    result: UnknownPeers = parse_choice(UnknownPeers, value, "unknown_peers policy")
    return result


@dataclass(frozen=True)
class Grant:
    """What one requester may do here, and why.

    Attributes:
        peer: the name of the peer configured here, or None for a node that is not.
        node: the node id the requester speaks as (None when it did not say).
        read: whether it may read our changes.
        write: whether it may write to us.
        kinds: the kinds it may read or write.
        direction: our direction towards the configured peer (None for unknown nodes).
        policy: the unknown-peers policy that applied (None for configured peers).
    """

    peer: str | None
    node: str | None
    read: bool
    write: bool
    kinds: tuple[str, ...]
    direction: SyncDirection | None = None
    policy: UnknownPeers | None = None

    @classmethod
    def for_peer(cls, name: str, config: BotSyncConfig, node: str | None) -> Grant:
        """The grant of the peer ``name`` configured here as ``config``."""
        return cls(
            peer=name,
            node=node,
            read=config.direction.pushes,
            write=config.direction.pulls,
            kinds=config.kinds,
            direction=config.direction,
        )

    @classmethod
    def for_unknown(cls, node: str | None, policy: UnknownPeers) -> Grant:
        """The grant of a node not configured here, under ``policy``."""
        return cls(
            peer=None,
            node=node,
            read=policy is not UnknownPeers.REFUSE,
            write=policy is UnknownPeers.READ_WRITE,
            kinds=KINDS if policy is not UnknownPeers.REFUSE else (),
            policy=policy,
        )

    # --- checks ---------------------------------------------------------------------------
    @property
    def who(self) -> str:
        """The requester in words, for messages."""
        if self.peer is not None:
            return f"peer {self.peer!r}"
        return f"node {self.node!r}" if self.node else "a node that did not name itself"

    def check_access(self) -> None:
        """Raise :class:`AccessDenied` unless the requester may use this node at all."""
        if self.policy is UnknownPeers.REFUSE:
            raise AccessDenied(
                f"{self.who} is not a peer configured here and this server refuses unknown "
                "peers (unknown_peers='refuse'): add it as a peer on this node, with a "
                "secret of its own, to let it sync"
            )

    def check_read(self, kind: str | None = None) -> None:
        """Raise :class:`AccessDenied` unless the requester may read (``kind``)."""
        self.check_access()
        if not self.read:
            if self.direction is not None:
                raise AccessDenied(
                    f"{self.who} is configured here as {self.direction.name}: this node "
                    "sends it no changes; configure it as BIDIRECTIONAL on this node to "
                    "allow that"
                )
            raise AccessDenied(f"{self.who} may not read from this node")
        if kind is not None and kind not in self.kinds:
            raise AccessDenied(self.kind_refusal(kind, "read"))

    def check_write(self, kind: str | None = None) -> None:
        """Raise :class:`AccessDenied` unless the requester may write (``kind``)."""
        self.check_access()
        if not self.write:
            if self.direction is not None:
                raise AccessDenied(
                    f"{self.who} is configured here as {self.direction.name}: this node "
                    "accepts no changes from it; configure it as BIDIRECTIONAL on this node "
                    "to allow that"
                )
            raise AccessDenied(
                f"{self.who} is not a peer configured here and this server lets unknown "
                f"peers only read (unknown_peers={self.policy.value if self.policy else ''!r})"
                ": add it as a peer on this node, with a secret of its own, to let it write"
            )
        if kind is not None and kind not in self.kinds:
            raise AccessDenied(self.kind_refusal(kind, "write"))

    def kind_refusal(self, kind: str, what: str) -> str:
        """Why the requester may not ``what`` (read/write) records of ``kind``."""
        setting = _KIND_SETTINGS.get(kind, kind)
        return (
            f"{self.who} may not {what} {kind} records here: {setting} is off for it on "
            f"this node; turn it on there to allow that"
        )

    def readable(self, kinds: Sequence[str] | None) -> list[str]:
        """The kinds of ``kinds`` (None: all) the requester may read."""
        return [k for k in (KINDS if kinds is None else kinds) if k in self.kinds]


# --- node ids of configured peers ---------------------------------------------------------
def inbound_node(store: Store, name: str) -> str | None:
    """The node id the peer ``name`` last signed a request to us as (None: not yet)."""
    text = store.get_meta(_INBOUND_META.format(name=name))
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    node = data.get("node_id") if isinstance(data, dict) else None
    return node if isinstance(node, str) else None


def inbound_record(store: Store, name: str) -> dict[str, Any]:
    """What is known of the node ids the peer ``name`` signed requests as: ``node_id``,
    and after a change ``previous_node_id`` and ``changed_at`` (Unix seconds)."""
    text = store.get_meta(_INBOUND_META.format(name=name))
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def note_inbound_node(store: Store, name: str, node: str, *, now: float) -> None:
    """Remember that the peer ``name`` signs as ``node``; a change is logged at WARNING
    (the peer keeps its grant: its credential, not its node id, says who it is)."""
    known = inbound_record(store, name)
    previous = known.get("node_id")
    if previous == node:
        return
    record: dict[str, Any] = {"node_id": node}
    if previous:
        logger.warning(
            "peer %r now signs its requests as node %r (was %r): its store was probably "
            "recreated or restored; it keeps its grant here",
            name,
            node,
            previous,
        )
        record.update(previous_node_id=previous, changed_at=now)
    store.set_meta(_INBOUND_META.format(name=name), json.dumps(record, sort_keys=True))


def known_nodes(store: Store, names: Iterable[str]) -> dict[str, set[str]]:
    """Every node id known for each configured peer: from our cursors (learned when we
    synced with it) and from the requests it signed (the current and the previous one),
    so that no other peer can take them over."""
    found: dict[str, set[str]] = {}
    for name in names:
        signed_as = inbound_record(store, name)
        nodes = {
            store.get_cursor(name, "pull").peer_node_id,
            store.get_cursor(name, "push").peer_node_id,
            signed_as.get("node_id"),
            signed_as.get("previous_node_id"),
        }
        found[name] = {n for n in nodes if isinstance(n, str) and n}
    return found


def configured_peers(store: Store) -> dict[str, BotSyncConfig]:
    """The peers configured here whose stored config still passes the checks."""
    peers: dict[str, BotSyncConfig] = {}
    for name, data in store.list_peers().items():
        try:
            peers[name] = BotSyncConfig.from_dict(data)
        except ConfigurationError:
            logger.warning("the stored config of peer %r is unreadable; it gets no grant", name)
    return peers


def grant_by_node(
    store: Store, node: str | None, policy: UnknownPeers = UnknownPeers.READ_WRITE
) -> Grant:
    """The grant of the requester speaking as ``node``, found by node id alone (for
    transports that cannot prove more, such as the in-process one)."""
    if node:
        peers = configured_peers(store)
        for name, nodes in known_nodes(store, peers).items():
            if node in nodes:
                return Grant.for_peer(name, peers[name], node)
    return Grant.for_unknown(node, policy)


def names_by_node(nodes: Mapping[str, set[str]]) -> dict[str, str]:
    """Node id -> peer name, from :func:`known_nodes`."""
    return {node: name for name, ids in nodes.items() for node in ids}
