"""Without aiohttp, importing neonpay.web_sync names the extra to install."""

from __future__ import annotations

import subprocess
import sys


def test_import_without_aiohttp_names_the_sync_extra() -> None:
    code = (
        "import sys; sys.modules['aiohttp'] = None\n"
        "from neonpay.errors import MissingExtraError\n"
        "try:\n"
        "    import neonpay.web_sync\n"
        "except MissingExtraError as exc:\n"
        "    print('missing', exc.extra, exc)\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.startswith("missing sync ")
    assert 'pip install -e ".[sync]"' in done.stdout
