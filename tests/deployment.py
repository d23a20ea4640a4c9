"""Several Harken hosts on one Redis, behind a SpreadingProxy: the scale-out tests' deployment."""
from conftest import Server
from spread import SpreadingProxy


class Deployment:
    """`hosts` gunicorn masters × `workers` each plus an events host, all on `redis_url`; `url`/`port` is the balancer."""

    def __init__(self, redis_url, log_dir, hosts=2, workers=2, events_workers=1, **env):
        common = {"HARKEN_PIPELINE": "none", "HARKEN_REDIS_URL": redis_url, **env}
        need_models = common["HARKEN_PIPELINE"] != "none"
        self.hosts = [Server({**common, "WEB_CONCURRENCY": workers}, log_dir / f"host{i}.log",
                             need_models=need_models) for i in range(hosts)]
        # events_workers=0: no events host; streams go to a random host like everything else.
        self.events_host = Server({**common, "WEB_CONCURRENCY": events_workers}, log_dir / "events.log",
                                  need_models=need_models) if events_workers else None
        self.proxy = SpreadingProxy([h.port for h in self.hosts],
                                    self.events_host.port if self.events_host else None)
        self.url, self.port = self.proxy.url, self.proxy.port

    def servers(self):
        return [*self.hosts, *([self.events_host] if self.events_host else [])]

    def log(self):
        return "\n".join(server.log() for server in self.servers())

    def stop(self):
        self.proxy.close()
        for server in self.servers():
            server.stop()
