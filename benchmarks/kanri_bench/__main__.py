from kanri_bench.cli import main

raise SystemExit(main())
