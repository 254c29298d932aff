from prm.cli import main

# Guarded: engines that start worker processes by spawning (vLLM) import the main module again in each worker, which
# must not run the command a second time.
if __name__ == "__main__":
    raise SystemExit(main())
