"""`python -m resnet_course COMMAND ...`: the course's command line without the `resnet-course` script, e.g. on a
machine without network where the package runs from the working tree (PYTHONPATH) and a set of unpacked wheels."""
from resnet_course.cli import main

if __name__ == '__main__':
    main(prog='python -m resnet_course')   # how the help and usage lines name the command
