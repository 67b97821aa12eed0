"""chromadb's check, from chroma-core/chroma 0.5.23 (wheel chromadb-0.5.23-py3-none-any.whl),
chromadb/__init__.py lines 71-92: at import time, unless it is the thin client and outside
Colab, the comparison and the RuntimeError below, word for word (the backslash continuations
inside the message are upstream's).

Then the statement 3.35 brought and chromadb's sysdb and embeddings queue use:
INSERT ... RETURNING (chromadb/db/mixins/sysdb.py:510, embeddings_queue.py:242). chromadb 0.5
installs on RHEL 9's python3 (3.9) but brings onnxruntime, numpy, grpcio and about a hundred
other packages, beyond the CI budget; this script is its check.
"""

import sqlite3

is_client = False
IN_COLAB = False

if not is_client:
    if sqlite3.sqlite_version_info < (3, 35, 0):
        if IN_COLAB:
            raise AssertionError("not reached: the look-alikes are not Colab")
        else:
            raise RuntimeError(
                "\033[91mYour system has an unsupported version of sqlite3. Chroma \
                    requires sqlite3 >= 3.35.0.\033[0m\n"
                "\033[94mPlease visit \
                    https://docs.trychroma.com/troubleshooting#sqlite to learn how \
                    to upgrade.\033[0m"
            )

db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE embeddings_queue (seq_id INTEGER PRIMARY KEY, id TEXT)")
returned = db.execute("INSERT INTO embeddings_queue (id) VALUES ('e1') RETURNING seq_id, id")
assert returned.fetchall() == [(1, "e1")]
print(f"chromadb: ok with SQLite {sqlite3.sqlite_version}")
