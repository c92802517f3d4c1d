"""A fast loopback webhook receiver (asyncio, HTTP/1.1 keep-alive) in its own process.

POST anything: answers 200 and records (receipt time, webhook-id or x-engine-command-id). GET /stats returns the
records as JSON; POST /reset clears them.
"""

import asyncio
import json
import multiprocessing
import time

import httpx


async def _serve(port_holder, ready):
    receipts: list[tuple[float, str]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                body = b""
                if path == "/stats":
                    body = json.dumps(receipts).encode()
                elif path == "/reset":
                    receipts.clear()
                else:
                    receipts.append((time.time(), headers.get("webhook-id") or headers.get("x-engine-command-id", "")))
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port_holder.value = server.sockets[0].getsockname()[1]
    ready.set()
    async with server:
        await server.serve_forever()


def _run(port_holder, ready):
    asyncio.run(_serve(port_holder, ready))


def start() -> tuple[multiprocessing.Process, str]:
    port = multiprocessing.Value("i", 0)
    ready = multiprocessing.Event()
    process = multiprocessing.Process(target=_run, args=(port, ready), daemon=True)
    process.start()
    if not ready.wait(10):
        raise RuntimeError("receiver did not start")
    return process, f"http://127.0.0.1:{port.value}"


def receipts(base: str) -> list:
    return httpx.get(f"{base}/stats", timeout=30).json()


def wait_for_receipts(base: str, count: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = receipts(base)
        if len(got) >= count:
            return got
        time.sleep(0.05)
    raise RuntimeError(f"only {len(receipts(base))} of {count} requests arrived within {timeout} s")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
