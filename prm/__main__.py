from prm.cli import main

raise SystemExit(main())
