from semsearch_cli.main import run

run()
