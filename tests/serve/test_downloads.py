"""The translated files' store: unguessable names, safe names, expiry and the bound, with a clock the test moves."""

from __future__ import annotations

from seq2seq.serve.downloads import FileStore, safe_filename


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_files_are_kept_until_they_expire_then_removed_from_disk():
    clock = Clock()
    store = FileStore(ttl=100, clock=clock)
    store.open()
    try:
        name = store.put(b"Hallo.", "notes.txt")
        other = store.put(b"Welt.", "notes.txt")
        assert name != other and name.endswith(".notes.txt") and len(name.split(".")[0]) == 32  # a UUID: not guessable
        stored = store.get(name)
        assert stored is not None and stored.path.read_bytes() == b"Hallo." and stored.filename == "notes.txt"
        assert stored.path.parent == store.directory
        clock.now = 99.9
        assert store.get(name) is not None
        clock.now = 100
        assert store.get(name) is None and not stored.path.exists() and len(store) == 0
        for hostile in ("../notes.txt", "/etc/passwd", name.replace(".", "/"), "", "%2e%2e"):
            assert store.get(hostile) is None
    finally:
        directory = store.directory
        store.close()
    assert directory is not None and not directory.exists()


def test_the_store_keeps_at_most_max_files_the_oldest_go_first():
    store = FileStore(ttl=1000, max_files=2, clock=Clock())
    store.open()
    try:
        names = [store.put(bytes([i]), f"{i}.txt") for i in range(3)]
        assert store.get(names[0]) is None and store.get(names[1]) is not None and store.get(names[2]) is not None
        assert sorted(p.name for p in store.directory.iterdir()) == sorted(names[1:])
    finally:
        store.close()


def test_uploaded_names_are_made_safe():
    assert safe_filename("report.docx") == "report.docx"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\me\\Bericht über Ärger.html") == "Bericht_ber_rger.html"
    assert safe_filename("..") == "file.txt" and safe_filename("") == "file.txt"
