"""Facts about installed Debian packages, for data cards (the data sources are Debian packages)."""

from __future__ import annotations

import subprocess


def package_version(package: str) -> str:
    """The installed version of the Debian package ``package`` (``dpkg-query -W``), or ``"unknown"``
    when it is not installed or dpkg is missing. Never raises."""
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"
