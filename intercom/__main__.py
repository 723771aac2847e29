from intercom.cli import main

raise SystemExit(main())
