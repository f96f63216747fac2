fn main() {
    postern::run()
}
