"""Options every command that works on a data directory shares."""

from __future__ import annotations

from pathlib import Path

import click

from cacheyard.cli.settings import default_data_dir

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_data_dir,
    show_default="$XDG_DATA_HOME/cacheyard",
    help="Where state, engine data and logs live.",
)
