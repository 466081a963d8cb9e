"""Realistic (query, passages) sets used to check the models against their references.

Each set mixes a clear answer, near misses and off-topic passages, so a ranking has
something to get right.
"""

QUERY_SETS = [
    (
        "what is the capital of France?",
        [
            "Paris is the capital and most populous city of France, with an estimated population of two million.",
            "London is the capital of England and the United Kingdom, standing on the River Thames.",
            "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris.",
            "France is a country in Western Europe with several overseas regions and territories.",
            "Lyon is the third-largest city of France and a centre of French cuisine.",
            "Berlin became the capital of reunified Germany in 1990.",
            "The French Revolution began in 1789 with the storming of the Bastille.",
            "Marseille is a port city on the Mediterranean coast of southern France.",
            "The President of France lives in the Élysée Palace in the centre of the capital.",
        ],
    ),
    (
        "how do vaccines train the immune system?",
        [
            "Vaccines expose the immune system to a harmless piece or weakened form of a pathogen, so that it "
            "builds antibodies and memory cells that respond quickly to a later real infection.",
            "The immune system includes the skin, white blood cells, the lymph nodes and the spleen.",
            "Edward Jenner tested the first smallpox vaccine in 1796 using material from cowpox lesions.",
            "Antibiotics kill bacteria or stop them from growing, but they do not work against viruses.",
            "Regular exercise and enough sleep are often recommended to stay healthy in winter.",
            "A training plan for a marathon usually builds weekly mileage slowly over four months.",
            "mRNA vaccines give cells instructions to make a spike protein, which the immune system learns to recognise.",
            "Herd immunity happens when enough people are immune that a disease cannot spread easily.",
            "The common cold is caused by more than two hundred different viruses.",
        ],
    ),
    (
        "when did the Berlin Wall fall?",
        [
            "The Berlin Wall fell on the night of 9 November 1989, when East German authorities opened the "
            "border crossings and crowds poured through.",
            "The Berlin Wall was built in August 1961 to stop emigration from East to West Berlin.",
            "German reunification was completed on 3 October 1990.",
            "Hadrian's Wall was a defensive fortification in the Roman province of Britannia.",
            "Berlin is known for its museums, its nightlife and its many parks.",
            "The Great Wall of China stretches across northern China for thousands of kilometres.",
            "Checkpoint Charlie was the best-known crossing point between East and West Berlin during the Cold War.",
            "The Cold War ended with the dissolution of the Soviet Union in December 1991.",
            "A retaining wall holds back soil on a slope and must resist the pressure of the earth behind it.",
        ],
    ),
    (
        "why is the sky blue",
        [
            "Sunlight is scattered by the molecules of the air, and shorter blue wavelengths are scattered much "
            "more than red ones (Rayleigh scattering), so the sky looks blue.",
            "Sunsets look red and orange because light travels through more air when the sun is low.",
            "The ocean appears blue partly because water absorbs red light.",
            "Blue is one of the three primary colours of light, together with red and green.",
            "Skydiving is the sport of jumping from an aircraft and opening a parachute.",
            "Many flags use blue to represent the sky or the sea.",
            "On Mars the daytime sky is butterscotch, while sunsets there look blue.",
            "The colour of the sky depends on the scattering of sunlight by gases and particles in the atmosphere.",
            "Blue whales are the largest animals known to have ever lived.",
        ],
    ),
    (
        "how to reverse a list in python",
        [
            "Use list.reverse() to reverse a list in place, or reversed(my_list) or the slice my_list[::-1] to get "
            "a reversed copy without changing the original.",
            "The sorted() function returns a new sorted list from the items of any iterable.",
            "A Python list is a mutable sequence that can hold items of different types.",
            "To reverse a string in JavaScript, split it into characters, reverse the array and join it.",
            "Ball pythons are docile snakes that are often kept as pets.",
            "Reverse osmosis pushes water through a membrane to remove dissolved salts.",
            "In Python, list slicing takes a start, a stop and a step; a negative step walks the list backwards.",
            "The append() method adds one item to the end of a Python list.",
            "Linked lists can be reversed iteratively by re-pointing each node to its predecessor.",
        ],
    ),
    (
        "symptoms of vitamin D deficiency",
        [
            "A lack of vitamin D can cause bone pain, muscle weakness, fatigue and, in children, rickets; adults "
            "may develop soft bones (osteomalacia).",
            "Vitamin D is made in the skin when it is exposed to sunlight and is also found in oily fish.",
            "Vitamin C deficiency causes scurvy, with bleeding gums and poor wound healing.",
            "Iron deficiency anaemia leads to tiredness, pale skin and shortness of breath.",
            "Calcium and vitamin D work together to keep bones strong.",
            "The D-Day landings took place in Normandy on 6 June 1944.",
            "Older adults, people with dark skin and people who rarely go outside are at higher risk of low vitamin D.",
            "Depression and frequent infections have also been linked to low vitamin D levels.",
            "Vitamin B12 is needed to make red blood cells and keep nerves healthy.",
        ],
    ),
]
