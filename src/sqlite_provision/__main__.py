from sqlite_provision.cli import main

main()
