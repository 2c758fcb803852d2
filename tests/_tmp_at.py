import os, sys
os.environ["DIGITS_JOBS_DIR"] = "/tmp/det_jobs"
sys.path.insert(0, os.path.dirname(__file__))
from test_pages import open_page, texts
at = open_page("dataset", job="20261201-033531-525-aa7b")
for e in at.exception: print("EXC", e.message, "\n".join(e.stack_trace[-6:]) if e.stack_trace else "")
print(texts(at)[:3000])
