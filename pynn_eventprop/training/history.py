"""Per-epoch figures of a training run, with CSV and JSON export."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class History:
    """Per-epoch figures of a training run: ``records`` is a list of dicts with keys
    ``epoch, loss, accuracy, seconds`` and, with validation data, ``val_loss, val_accuracy``."""

    records: list = field(default_factory=list)

    def __getitem__(self, key):
        return [r.get(key) for r in self.records]

    def to_csv(self, path) -> Path:
        path = Path(path)
        keys = list(dict.fromkeys(k for r in self.records for k in r))
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.records)
        return path

    def to_json(self, path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.records, indent=1))
        return path
