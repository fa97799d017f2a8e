from spec.docs import main

raise SystemExit(main())
