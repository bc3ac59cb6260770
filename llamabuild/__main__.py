from llamabuild.cli import main

main()
