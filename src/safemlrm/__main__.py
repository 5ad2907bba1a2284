from safemlrm.cli import main

raise SystemExit(main())
