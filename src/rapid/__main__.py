from rapid.cli import main

main()
