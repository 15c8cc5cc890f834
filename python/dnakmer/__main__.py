from dnakmer.cli import main

main()
