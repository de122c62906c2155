from . import qtc_bench_row, qtc_job
