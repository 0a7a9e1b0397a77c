"""The create/exec parent-child channel (ociruntime/sync.py)."""
import pytest

from ociruntime import sync
from ociruntime.errors import InitError


def test_child_error_survives_the_child_leaving_our_messages_unread():
    # the child reports an error and exits without reading the GO we sent meanwhile: the kernel then sets
    # ECONNRESET on our end and reports it before the queued ERR; the ERR must still reach the user
    parent, child = sync.pair()
    sync.send(child, sync.ERR, "mount /proc: EPERM")
    sync.send(parent, sync.GO)
    child.close()
    with pytest.raises(InitError, match="^mount /proc: EPERM$"):
        sync.expect(parent, sync.READY)
    parent.close()


def test_pending_error_is_seen_after_the_child_left_unread_messages():
    parent, child = sync.pair()
    sync.send(child, sync.ERR, "pivot_root: EBUSY")
    sync.send(parent, sync.GO)
    child.close()
    with pytest.raises(InitError, match="^pivot_root: EBUSY$"):
        sync.raise_pending_error(parent)
    parent.close()
