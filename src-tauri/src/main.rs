fn main(){postern::run()}
