"""A ComfyUI custom node package with no nodes: it records every executing and
progress event with a timestamp and the peak GPU memory so far to the JSON
lines file named by WAN22_BENCH_TRACE, for scripts/gpu-bench.sh."""
import json
import os
import threading
import time

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}

_path = os.environ.get("WAN22_BENCH_TRACE")


def _install(path):
    import server

    ps = server.PromptServer.instance
    orig = ps.send_sync
    lock = threading.Lock()

    def write(rec):
        with lock, open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")

    # ComfyUI's start: from the process's creation to its server listening.
    try:
        import psutil

        write({"t": psutil.Process().create_time(), "event": "process_start"})
    except Exception:  # noqa: BLE001
        pass

    async def on_startup(_app):
        write({"t": time.time(), "event": "server_started"})

    ps.app.on_startup.append(on_startup)

    def send_sync(event, data, sid=None):
        if event in ("executing", "progress", "execution_start", "execution_success", "execution_cached"):
            rec = {"t": time.time(), "event": event}
            if isinstance(data, dict):
                for k in ("node", "value", "max", "prompt_id"):
                    if k in data:
                        rec[k] = data[k]
            try:
                import torch

                if torch.cuda.is_available():
                    rec["vram_peak"] = torch.cuda.max_memory_allocated()
                    rec["vram_reserved_peak"] = torch.cuda.max_memory_reserved()
            except Exception:  # noqa: BLE001 - never break ComfyUI for a measurement
                pass
            write(rec)
        return orig(event, data, sid)

    ps.send_sync = send_sync


if _path:
    _install(_path)
