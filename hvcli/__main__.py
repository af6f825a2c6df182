from hvcli.main import main

main()
