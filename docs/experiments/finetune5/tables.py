"""The table of docs/experiments/finetune5.md: the BERT shipped before (docs/experiments/finetune4)
against 2000 more steps (the JSON files beside this script). Run from the repository root:
python docs/experiments/finetune5/tables.py"""
import importlib.util
from pathlib import Path

HERE = Path(__file__).parent
spec = importlib.util.spec_from_file_location("tables", HERE.parent / "longer-finetune" / "tables.py")
tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tables)

if __name__ == "__main__":
    tables.main(before=(HERE.parent / "finetune4", "finetune4", "19,750 steps (shipped before)"),
                after=(HERE, "finetune5", "+ 2000 more at lr 5e-4"))
