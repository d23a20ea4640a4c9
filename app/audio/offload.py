"""Decoding off the gevent hub: each call runs in a native thread of a small pool of its own.

PyAV/libavcodec, the framers' Python loops and the resampler all take CPU in proportion to
the audio, and the hub must answer every other request meanwhile. A native thread lets the
hub run: the C parts release the GIL around their work, and Python code in a thread gives
the GIL up every `sys.getswitchinterval()` (5 ms), so the hub waits at most a few switch
intervals per decoding thread. The pool is small (HARKEN_DECODE_THREADS) so that many
sessions decoding at once queue for a thread instead of sharing the GIL ever more thinly
with the hub. Worker processes would isolate more, but a session's decoder state (codec
contexts, partial units) would have to live in that process; threads keep it in place.
"""
import gevent.threadpool


class DecodePool:
    """Runs blocking decode calls in native threads; the calling greenlet waits, the hub does not."""

    def __init__(self, threads):
        self._pool = gevent.threadpool.ThreadPool(max(1, threads))

    def run(self, func, *args):
        """func(*args) in a pool thread; its result, or its exception re-raised here."""
        return self._pool.apply(func, args)
