"""The seed gateway filmgate replaced, rebuilt from its description for the benchmark's `seed`
mode: a pyserial-asyncio reader, an in-memory deque, aiohttp posts (the sequence once, then
one film per request), nothing durable. The original script is not in this repository; this
one does what the description says and no more, so the `seed` mode can be run side by side
with filmgate's `nginx` mode on the same pty writer and the same nginx.

Usage: seed.py PORT BASE_URL FILMS   (prints "ready" once the port is open, then posts FILMS
films and exits)
"""

import asyncio
import collections
import sys
import uuid

import aiohttp
import serial_asyncio

FIELDS = ("lot", "film_no", "thickness_um", "width_mm", "defects")


async def main(port: str, base_url: str, films: int) -> None:
    reader, _writer = await serial_asyncio.open_serial_connection(url=port, baudrate=115200)
    waiting: collections.deque[str] = collections.deque()
    arrived = asyncio.Event()

    async def read() -> None:
        while True:
            line = await reader.readuntil(b"\r")
            waiting.append(line[:-1].decode())
            arrived.set()

    print("ready", flush=True)
    reading = asyncio.create_task(read())
    sequences: dict[str, object] = {}
    posted = 0
    async with aiohttp.ClientSession() as session:
        while posted < films:
            if not waiting:
                arrived.clear()
                await arrived.wait()
                continue
            raw = waiting.popleft()
            data = dict(zip(FIELDS, raw.split(",")))
            lot = data.get("lot", "")
            if lot not in sequences:
                body = {"uid": str(uuid.uuid4()), "key": lot}
                async with session.post(base_url + "sequences/", json=body) as answer:
                    sequences[lot] = (await answer.json(content_type=None) or {}).get("id")
            body = {"uid": str(uuid.uuid4()), "sequence": sequences[lot], "raw": raw, **data}
            async with session.post(base_url + "films/", json=body) as answer:
                await answer.read()
            posted += 1
    reading.cancel()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
