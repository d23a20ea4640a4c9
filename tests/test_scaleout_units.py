"""Small checks of the scale-out store's keys and scripts that need no server."""
import re

from redis.crc import key_slot

from app.shared import store
from app.shared.placement import WORKERS_KEY


def test_every_key_of_a_session_is_in_one_cluster_slot():
    """A session's keys share the hash tag {id}, so each script runs on one Redis Cluster slot."""
    session_id = "live_0123456789abcdef01234567"
    keys = store.session_keys(session_id) + [store.reply_key(session_id, "feedbeef")]
    assert len({key_slot(key.encode()) for key in keys}) == 1
    assert all(f"{{{session_id}}}" in key for key in keys)


def test_scripts_touch_only_the_keys_they_are_given():
    """No script builds a key name itself (Cluster routes a script by its KEYS alone)."""
    for name in ("CREATE", "CHECK", "COMMIT", "APPEND", "TRANSITION", "KEEPALIVE", "DETACH", "RENEW",
                 "RELEASE", "ADMIT"):
        source = getattr(store, name)
        assert "harken:" not in source, name
        assert not re.search(r"redis\.call\('\w+', *'", source), name  # a literal key argument


def test_global_keys_stand_alone():
    """The two deployment-wide keys carry no session tag: they are only ever touched on their own."""
    assert "{" not in store.INDEX_KEY and "{" not in WORKERS_KEY
