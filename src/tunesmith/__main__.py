from tunesmith.cli import main

raise SystemExit(main())
